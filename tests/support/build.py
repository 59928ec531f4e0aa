"""Build the C test servers (tests/servers/*.c) and find free ports for test servers."""

from __future__ import annotations

import random
import socket
import subprocess
from collections.abc import Sequence
from pathlib import Path

class BuildError(RuntimeError):
    """The compiler failed; the message holds its command and output."""


def build_c(tmp_dir: Path, source: Path, binary_name: str, flags: Sequence[str] = ()) -> Path:
    """Compile the C test server `source` (with -pthread and `flags`) into
    tmp_dir/binary_name.

    A binary already there and newer than the source and every header next to it
    (tests/servers/*.h) is reused.
    """
    binary = Path(tmp_dir) / binary_name
    inputs = [Path(source), *Path(source).parent.glob("*.h")]
    if binary.exists() and binary.stat().st_mtime >= max(f.stat().st_mtime for f in inputs):
        return binary
    command = ["cc", "-O2", "-pthread", "-Wall", "-Wextra", *flags,
               "-o", str(binary), str(source)]
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


def root_only_port(fallback: int) -> int:
    """A free port that only root may bind, so a new generation that runs as nobody
    serves it only through the inherited listener; `fallback` where every port is
    free to bind (net.ipv4.ip_unprivileged_port_start 0)."""
    start = int(Path("/proc/sys/net/ipv4/ip_unprivileged_port_start").read_text())
    for candidate in random.sample(range(max(start // 2, 1), start), min(start // 2, 200)):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", candidate))
                return candidate
            except OSError:
                continue
    return fallback
