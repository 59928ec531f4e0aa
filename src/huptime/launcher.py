"""Start a command with the shim preloaded: resolve it, prepare the environment, exec.

Nothing here runs after the exec: from then on the shim inside the server does the
work. The variables set here are named in csrc/protocol.h (through protocol.py) and
explained in docs/protocol.md.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from huptime import HuptimeError, protocol, record
from huptime.program import preload_refusal

SHIM_NAME = "libhuptime.so"

# Stripped from the caller's environment at start: every variable of protocol.h,
# since a stale one (a server started from another huptime server's shell) must
# never reach the shim. build_env then sets the settings of this launch.
STRIPPED_VARS = protocol.ENV_NAMES


@dataclass(frozen=True)
class Settings:
    """What the operator chose on the command line."""

    mode: str = "fork"            # "fork" or "exec"
    signal: int = 1               # restart signal number
    ready_timeout: float = 60.0   # seconds
    drain_timeout: float = 300.0  # seconds
    drain_idle: float = 1.0       # seconds a connection may be idle once draining; 0: off
    debug: bool = False
    unlink: tuple[str, ...] = ()  # absolute paths removed when a restart begins
    wait: bool = False            # an old generation waits for its own children
    drain_signal: int = 0         # fork mode: sent to an old generation's leader; 0 none
    check: str = ""               # shell command run before each restart; "" none
    probe: str = ""               # fork mode: shell command run against the twins; "" none
    probe_http: str = ""          # fork mode: the shim GETs this path on the first twin
    probe_timeout: float = 0.0    # seconds; 0: --ready-timeout
    backlog: int = 511            # listen queues at least this long (BACKLOG_DEFAULT); 0: as asked
    revive: bool = False          # a supervisor starts the program again when it exits
    multi: int = 1                # copies of the program on the same listeners
    listen: tuple[str, ...] = ()  # --listen ADDR: huptime binds, passes the sockets (activation.py)
    ready: str = "auto"           # --listen readiness: auto, notify, proc or delay:SECONDS
    user: str = ""                # --listen: run the program as USER[:GROUP]


def shim_path() -> Path:
    """The shim shipped inside this package."""
    path = Path(str(resources.files("huptime").joinpath(SHIM_NAME)))
    if not path.is_file():
        raise HuptimeError(f"the shim is missing ({path}): reinstall huptime", 1)
    return path


def resolve_command(name: str, path_var: str | None) -> str:
    """Find the program like a shell: 127 if not found, 126 if not executable."""
    if "/" in name:
        candidate = Path(name)
        if not candidate.exists():
            raise HuptimeError(f"{name}: command not found", 127)
        if candidate.is_dir() or not os.access(candidate, os.X_OK):
            raise HuptimeError(f"{name}: permission denied (not an executable file)", 126)
        return name
    found = shutil.which(name, path=path_var)
    if found:
        return found
    # A match that exists but is not executable is a 126, like in a shell.
    for directory in (path_var or os.defpath).split(os.pathsep):
        candidate = Path(directory or ".") / name
        if candidate.is_file():
            raise HuptimeError(f"{name}: permission denied (not an executable file)", 126)
    raise HuptimeError(f"{name}: command not found", 127)


def build_env(base: dict[str, str], settings: Settings, shim: Path, pid: int) -> dict[str, str]:
    """The server's environment: the caller's, plus the preload and the settings."""
    env = {k: v for k, v in base.items() if k not in STRIPPED_VARS}
    preload = [p for p in env.get("LD_PRELOAD", "").replace(":", " ").split() if p != str(shim)]
    env["LD_PRELOAD"] = " ".join([str(shim), *preload])
    env[protocol.ENV_PID] = str(pid)
    env[protocol.ENV_GENERATION] = "1"
    env[protocol.ENV_MODE] = settings.mode
    env[protocol.ENV_SIGNAL] = str(settings.signal)
    env[protocol.ENV_READY_TIMEOUT_MS] = str(max(1, round(settings.ready_timeout * 1000)))
    env[protocol.ENV_DRAIN_TIMEOUT_MS] = str(max(1, round(settings.drain_timeout * 1000)))
    env[protocol.ENV_DRAIN_IDLE_MS] = str(round(settings.drain_idle * 1000))
    env[protocol.ENV_BACKLOG] = str(settings.backlog)
    if settings.debug:
        env[protocol.ENV_DEBUG] = "1"
    if settings.wait:
        env[protocol.ENV_WAIT] = "1"
    if settings.unlink:
        env[protocol.ENV_UNLINK] = "\n".join(settings.unlink)
    if settings.drain_signal:
        env[protocol.ENV_DRAIN_SIGNAL] = str(settings.drain_signal)
    if settings.check:
        env[protocol.ENV_CHECK] = settings.check
    if settings.probe:
        env[protocol.ENV_PROBE] = settings.probe
    if settings.probe_http:
        env[protocol.ENV_PROBE_HTTP] = settings.probe_http
    if settings.probe or settings.probe_http:
        env[protocol.ENV_PROBE_TIMEOUT_MS] = str(max(1, round(
            (settings.probe_timeout or settings.ready_timeout) * 1000)))
    adopt_activated(env, pid)
    return env


def adopt_activated(env: dict[str, str], pid: int) -> None:
    """Socket activation: sockets systemd passed to this process (LISTEN_PID is its
    PID) become generation 1's inherited listeners, which the program's own bind() to
    the same address claims. The LISTEN_* variables do not reach the program."""
    passed = [env.pop(name, None) for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES")]
    if passed[0] != str(pid) or not (passed[1] or "").isdigit():
        return
    count = min(int(passed[1]), protocol.HANDOFF_MAX_FDS)
    if count:
        env[protocol.ENV_FDS] = ",".join(str(3 + i) for i in range(count))
        env[protocol.ENV_PROTOCOL] = str(protocol.HUPTIME_PROTOCOL_VERSION)


def record_instance(command: list[str], program: str, settings: Settings,
                    env: dict[str, str]) -> None:
    """Make the instance record the control commands find; without one the server
    still runs, only --status/--restart/--stop cannot see it."""
    try:
        path = record.new_instance(command, os.path.abspath(program), {
            "mode": "listen" if settings.listen else settings.mode, "signal": settings.signal,
            "ready_timeout": settings.ready_timeout
            + ((settings.probe_timeout or settings.ready_timeout)
               if settings.probe or settings.probe_http else 0),
            "drain_timeout": settings.drain_timeout,
            **({"supervisor": os.getpid(), "copies": settings.multi}
               if settings.revive or settings.multi > 1 or settings.listen or os.getpid() == 1
               else {}),
        }, os.getpid())
    except (HuptimeError, OSError) as exc:
        print(f"huptime: warning: no instance record ({exc}): --status, --restart and "
              "--stop will not find this server", file=sys.stderr)
        return
    env[protocol.ENV_CONTROL] = str(path)


def resolve_user(spec: str) -> pwd.struct_passwd:
    """USER[:GROUP] for --user: the account, with GROUP as its primary group if given."""
    name, _, group = spec.partition(":")
    try:
        account = pwd.getpwnam(name) if not name.isdigit() else pwd.getpwuid(int(name))
    except KeyError:
        raise HuptimeError(f"--user {spec}: no such user", 2) from None
    if group:
        import grp
        try:
            gid = grp.getgrnam(group).gr_gid if not group.isdigit() else int(group)
        except KeyError:
            raise HuptimeError(f"--user {spec}: no such group {group!r}", 2) from None
        account = pwd.struct_passwd((*account[:3], gid, *account[4:]))
    return account


def listen(command: list[str], program: str, settings: Settings) -> int:
    """--listen: bind, then run the program with the sockets passed (activation.py)."""
    from huptime import activation, endpoints
    user = resolve_user(settings.user) if settings.user else None
    if user is not None and os.geteuid() != 0:
        raise HuptimeError(f"--user {settings.user} needs huptime to run as root (it binds, "
                           "then runs the program as that user)", 2)
    sockets = endpoints.systemd_sockets()
    for text in settings.listen:
        endpoint = endpoints.parse(text)
        try:
            sock = endpoints.bind(endpoint, settings.backlog or protocol.BACKLOG_DEFAULT)
        except OSError as exc:
            raise HuptimeError(f"--listen {text}: cannot listen on {endpoint.describe()}: "
                               f"{exc.strerror or exc}", 1) from None
        sockets.append((sock.detach(), endpoint.name, endpoint.describe()))
    env = {k: v for k, v in os.environ.items() if k not in STRIPPED_VARS}
    record_instance(command, program, settings, env)
    return activation.activate(program, command, env, settings, sockets, user)


def launch(command: list[str], settings: Settings) -> None:
    """Replace this process with the command under the shim; returns only by raising."""
    program = resolve_command(command[0], os.environ.get("PATH"))
    if settings.listen:
        raise SystemExit(listen(command, program, settings))
    why = preload_refusal(program, os.environ.get("PATH"))
    if why:
        raise HuptimeError(f"cannot run {command[0]} under huptime's preload: {why}. Run it "
                           "with --listen ADDR instead: huptime binds the sockets and passes "
                           "them (LISTEN_FDS, systemd style); nothing was started", 2)
    shim = shim_path()
    env = build_env(dict(os.environ), settings, shim, os.getpid())
    record_instance(command, program, settings, env)
    if settings.revive or settings.multi > 1 or os.getpid() == 1:
        from huptime.supervisor import supervise
        raise SystemExit(supervise(program, command, env, settings))
    # Python ignores these at start and exec keeps ignored signals: the program must not.
    for name in ("SIGPIPE", "SIGXFSZ"):
        signal.signal(getattr(signal, name), signal.SIG_DFL)
    try:
        os.execve(program, command, env)
    except OSError as exc:
        if protocol.ENV_CONTROL in env:
            shutil.rmtree(env[protocol.ENV_CONTROL], ignore_errors=True)
        status = 126 if exc.errno in (13, 8) else 127  # EACCES, ENOEXEC
        raise HuptimeError(f"{command[0]}: {exc.strerror}", status) from exc
