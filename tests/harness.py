"""Run a command under huptime with pytest-xprocess and follow its generations.

    served = Served(xprocess, "threaded", [python, "server.py", "8000"])
    served.start()                 # waits for "generation 1 serving"
    served.restart()               # signal, wait for "generation 2 serving"
    served.expect_rollback()       # signal, wait for "restart failed: generation N"

Generations are followed through the shim's own log lines (docs/protocol.md), so
a restart counts only once the new generation really waits for clients. The test
process is a child subreaper: generations orphaned by a fork-mode restart stay
its descendants, and cleanup ends exactly those, by PID.
"""

from __future__ import annotations

import ctypes
import os
import re
import signal
import sys
import time
from pathlib import Path

from xprocess import ProcessStarter

PR_SET_CHILD_SUBREAPER = 36
HUPTIME = [sys.executable, "-m", "huptime"]


def become_subreaper() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def _parents() -> dict[int, int]:
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read().decode("ascii", "replace")
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        table[int(entry)] = int(fields[1])
    return table


def descendants(root: int | None = None) -> list[int]:
    """PIDs below root (default: this test process), live or zombie."""
    root = os.getpid() if root is None else root
    parents = _parents()
    found, frontier = [], [root]
    while frontier:
        parent = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == parent:
                found.append(pid)
                frontier.append(pid)
    return found


def reap(timeout: float = 10.0) -> None:
    """Reap children of this process that have exited, until none is left or timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            if not descendants():
                return
            time.sleep(0.02)


def end_descendants(timeout: float = 10.0) -> None:
    """SIGKILL every process this test started (our descendants), and reap them."""
    for _ in range(5):
        pids = [p for p in descendants() if not _is_zombie(p)]
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        reap(timeout)
    reap(timeout)


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode("ascii", "replace")
    except OSError:
        return True
    return stat[stat.rfind(")") + 2:].split()[0] in ("Z", "X")


def live_descendants() -> list[int]:
    return [p for p in descendants() if not _is_zombie(p)]


class Served:
    """A command under huptime, started through xprocess; tracks generation and leader."""

    def __init__(self, xprocess, name: str, command: list[str], *, options: list[str] = (),
                 env: dict[str, str] | None = None, signum: int = signal.SIGHUP,
                 exec_mode: bool = False, cwd: Path | None = None) -> None:
        self.xprocess = xprocess
        self.name = f"{name}-{os.getpid()}"  # never a stale pid file from another run
        self.exec_mode = exec_mode
        self.args = [*HUPTIME, *(["--exec"] if exec_mode else []), *options, "--", *command]
        if cwd is not None:
            self.args = ["/bin/sh", "-c", 'cd "$0" && exec "$@"', str(cwd), *self.args]
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.signum = signum
        self.generation = 0
        self.leader = 0
        self.logpath: Path | None = None

    def start(self, timeout: float = 30.0) -> Served:
        served = self

        class Starter(ProcessStarter):
            pattern = "generation 1 serving"
            args = served.args
            env = served.env
            max_read_lines = 10_000
            terminate_on_interrupt = True

        Starter.timeout = timeout
        pid, logpath = self.xprocess.ensure(self.name, Starter, restart=True, persist_logs=False)
        self.logpath = Path(logpath)
        self.leader = pid
        self.generation = 1
        return self

    def log(self) -> str:
        return self.logpath.read_text(errors="replace")

    def wait_log(self, pattern: str, timeout: float = 30.0, count: int = 1) -> re.Match:
        """Wait until the log has `count` matches of pattern; return the last."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            matches = list(regex.finditer(self.log()))
            if len(matches) >= count:
                return matches[count - 1]
            if time.monotonic() >= deadline:
                raise TimeoutError(f"no {pattern!r} (x{count}) in {timeout}s; log tail:\n"
                                   + "\n".join(self.log().splitlines()[-30:]))
            time.sleep(0.02)

    def signal(self) -> None:
        os.kill(self.leader, self.signum)

    def restart(self, timeout: float = 30.0) -> int:
        """Send the restart signal; return once the next generation serves."""
        n = self.generation + 1
        self.signal()
        if not self.exec_mode:
            ready = self.wait_log(rf"generation {n} \(pid (\d+)\) ready", timeout)
            self.leader = int(ready.group(1))
        self.wait_log(rf"generation {n} serving", timeout)
        self.generation = n
        return self.leader

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM to the leader; wait until every process of the server is gone."""
        os.kill(self.leader, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while live_descendants():
            if time.monotonic() > deadline:
                raise TimeoutError(f"still running after SIGTERM: {live_descendants()}")
            time.sleep(0.02)

    def expect_rollback(self, timeout: float = 30.0) -> str:
        """Send the restart signal; return the logged reason the new generation failed."""
        before = len(re.findall(r"restart failed", self.log()))
        self.signal()
        line = self.wait_log(r"restart failed: ([^\n]*)", timeout, before + 1)
        return line.group(1)
