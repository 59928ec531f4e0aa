"""Build the C test server and find free ports for test servers."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

CSERVER_SOURCE = Path(__file__).resolve().parent.parent / "servers" / "cserver.c"


class BuildError(RuntimeError):
    """The compiler failed; the message holds its command and output."""


def build_cserver(tmp_dir: Path, accept4: bool) -> Path:
    """Compile cserver.c into tmp_dir (plain accept, or accept4 with SOCK_CLOEXEC).

    A binary already in tmp_dir and newer than the source is reused.
    """
    binary = Path(tmp_dir) / ("cserver-accept4" if accept4 else "cserver-accept")
    if binary.exists() and binary.stat().st_mtime >= CSERVER_SOURCE.stat().st_mtime:
        return binary
    command = ["cc", "-O2", "-pthread", "-Wall", "-Wextra"]
    if accept4:
        command.append("-DUSE_ACCEPT4")
    command += ["-o", str(binary), str(CSERVER_SOURCE)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BuildError(f"{' '.join(command)}: {exc}") from exc
    if done.returncode != 0:
        raise BuildError(f"{' '.join(command)} exited with {done.returncode}:\n"
                         f"{done.stdout}{done.stderr}")
    return binary


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
