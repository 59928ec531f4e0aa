"""Start a command with the shim preloaded: resolve it, prepare the environment, exec.

Nothing here runs after the exec: from then on the shim inside the server does the
work. docs/protocol.md lists every variable set here.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from huptime import record

SHIM_NAME = "libhuptime.so"

# Handoff state a stale environment may carry; the shim must never see it at start.
HANDOFF_VARS = (
    "HUPTIME_FDS",
    "HUPTIME_READY_FD",
    "HUPTIME_GENERATION",
    "HUPTIME_PENDING",
    "HUPTIME_IGNORED_SIGNALS",
    "HUPTIME_SUPERVISOR_FD",
    "HUPTIME_SLOT",
)


class LaunchError(Exception):
    """A problem to report in one line, with the exit status a shell would use."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Settings:
    """What the operator chose on the command line."""

    mode: str = "fork"            # "fork" or "exec"
    signal: int = 1               # restart signal number
    ready_timeout: float = 60.0   # seconds
    drain_timeout: float = 300.0  # seconds
    debug: bool = False
    unlink: tuple[str, ...] = ()  # absolute paths removed when a restart begins
    wait: bool = False            # an old generation waits for its own children
    revive: bool = False          # a supervisor starts the program again when it exits
    multi: int = 1                # copies of the program on the same listeners


def shim_path() -> Path:
    """The shim shipped inside this package."""
    path = Path(str(resources.files("huptime").joinpath(SHIM_NAME)))
    if not path.is_file():
        raise LaunchError(f"the shim is missing ({path}): reinstall huptime", 1)
    return path


def resolve_command(name: str, path_var: str | None) -> str:
    """Find the program like a shell: 127 if not found, 126 if not executable."""
    if "/" in name:
        candidate = Path(name)
        if not candidate.exists():
            raise LaunchError(f"{name}: command not found", 127)
        if candidate.is_dir() or not os.access(candidate, os.X_OK):
            raise LaunchError(f"{name}: permission denied (not an executable file)", 126)
        return name
    found = shutil.which(name, path=path_var)
    if found:
        return found
    # A match that exists but is not executable is a 126, like in a shell.
    for directory in (path_var or os.defpath).split(os.pathsep):
        candidate = Path(directory or ".") / name
        if candidate.is_file():
            raise LaunchError(f"{name}: permission denied (not an executable file)", 126)
    raise LaunchError(f"{name}: command not found", 127)


def build_env(base: dict[str, str], settings: Settings, shim: Path, pid: int) -> dict[str, str]:
    """The server's environment: the caller's, plus the preload and the settings."""
    env = {k: v for k, v in base.items() if k not in HANDOFF_VARS}
    preload = [p for p in env.get("LD_PRELOAD", "").replace(":", " ").split() if p != str(shim)]
    env["LD_PRELOAD"] = " ".join([str(shim), *preload])
    env["HUPTIME_PID"] = str(pid)
    env["HUPTIME_GENERATION"] = "1"
    env["HUPTIME_MODE"] = settings.mode
    env["HUPTIME_SIGNAL"] = str(settings.signal)
    env["HUPTIME_READY_TIMEOUT_MS"] = str(max(1, round(settings.ready_timeout * 1000)))
    env["HUPTIME_DRAIN_TIMEOUT_MS"] = str(max(1, round(settings.drain_timeout * 1000)))
    if settings.debug:
        env["HUPTIME_DEBUG"] = "1"
    else:
        env.pop("HUPTIME_DEBUG", None)
    if settings.wait:
        env["HUPTIME_WAIT"] = "1"
    else:
        env.pop("HUPTIME_WAIT", None)
    if settings.unlink:
        env["HUPTIME_UNLINK"] = "\n".join(settings.unlink)
    else:
        env.pop("HUPTIME_UNLINK", None)
    env.pop("HUPTIME_CONTROL", None)
    return env


def record_instance(command: list[str], program: str, settings: Settings,
                    env: dict[str, str]) -> None:
    """Make the instance record the control commands find; without one the server
    still runs, only --status/--restart/--stop cannot see it."""
    try:
        path = record.new_instance(command, os.path.abspath(program), {
            "mode": settings.mode, "signal": settings.signal,
            "ready_timeout": settings.ready_timeout, "drain_timeout": settings.drain_timeout,
            **({"supervisor": os.getpid(), "copies": settings.multi}
               if settings.revive or settings.multi > 1 else {}),
        }, os.getpid())
    except (record.ControlError, OSError) as exc:
        print(f"huptime: warning: no instance record ({exc}): --status, --restart and "
              "--stop will not find this server", file=sys.stderr)
        return
    env["HUPTIME_CONTROL"] = str(path)


def launch(command: list[str], settings: Settings) -> None:
    """Replace this process with the command under the shim; returns only by raising."""
    shim = shim_path()
    program = resolve_command(command[0], os.environ.get("PATH"))
    env = build_env(dict(os.environ), settings, shim, os.getpid())
    record_instance(command, program, settings, env)
    if settings.revive or settings.multi > 1:
        from huptime.supervisor import supervise
        raise SystemExit(supervise(program, command, env, settings.signal, settings.multi))
    # Python ignores these at start and exec keeps ignored signals: the program must not.
    for name in ("SIGPIPE", "SIGXFSZ"):
        signal.signal(getattr(signal, name), signal.SIG_DFL)
    try:
        os.execve(program, command, env)
    except OSError as exc:
        if "HUPTIME_CONTROL" in env:
            shutil.rmtree(env["HUPTIME_CONTROL"], ignore_errors=True)
        status = 126 if exc.errno in (13, 8) else 127  # EACCES, ENOEXEC
        raise LaunchError(f"{command[0]}: {exc.strerror}", status) from exc
