"""What demo.py and bench.py share: processes, the shim's log, restarts, cleanup.

No pytest, no xprocess: servers are started with subprocess.Popen, their stdout and
stderr go to a log file, and generations are followed through the shim's own log
lines (docs/protocol.md). This process makes itself a child subreaper, so fork-mode
generations orphaned by a restart stay its descendants; end_descendants() kills
every one of them by PID and reaps them.
"""

from __future__ import annotations

import math
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from support.build import build_cserver, free_port  # noqa: E402,F401
from support.load import LoadResult, LoadRunner, run_load  # noqa: E402,F401
from servers_under_test import NAMES, make_server  # noqa: E402,F401
from support.tree import (  # noqa: E402,F401
    become_subreaper, descendants, end_descendants, is_alive, stat_fields)

HUPTIME = [sys.executable, "-m", "huptime"]
POLL = 0.001  # seconds between looks at a log file
DEATH_GRACE = 1.0  # seconds a process must stay gone before a wait gives up on it
FAILURE_CLASSES = ("refused", "reset", "empty", "short", "timeout", "http_5xx",
                   "http_other", "other_error")


class BenchError(RuntimeError):
    """A measurement could not be made; the message says why (with a log tail)."""


def check_environment() -> None:
    """huptime importable from this interpreter, no stale huptime settings inherited."""
    try:
        import huptime.launcher as launcher
        launcher.shim_path()
    except Exception as exc:  # noqa: BLE001 - any reason is reported the same way
        sys.exit(f"huptime is not installed for {sys.executable} ({exc}); "
                 f"run `make install` and use .venv/bin/python")
    for var in [v for v in os.environ if v.startswith("HUPTIME_")]:
        del os.environ[var]


def shim_path() -> Path:
    import huptime.launcher as launcher
    return launcher.shim_path()


# ---------------------------------------------------------------- processes

def cpu_seconds(root: int) -> float:
    """User+system CPU time of root and its live descendants (their threads included)."""
    ticks = 0
    for pid in [root, *descendants(root)]:
        fields = stat_fields(pid)
        if fields and len(fields) > 12:
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def reap_zombies(keep: tuple[int, ...] = ()) -> None:
    """Reap exited children (generations reparented to us), except the PIDs in keep.

    Processes started with Popen are kept for Popen.poll(), which records their status.
    """
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in keep:
            continue
        fields = stat_fields(int(entry))
        if fields and fields[0] == "Z" and int(fields[1]) == me:
            try:
                os.waitpid(int(entry), os.WNOHANG)
            except ChildProcessError:
                pass


def install_exit_handlers() -> None:
    """SIGTERM/SIGINT end the run through KeyboardInterrupt, so cleanup runs."""
    def interrupt(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, interrupt)


def spawn(argv: list[str], log_path: Path, *, env: dict[str, str] | None = None,
          cwd: Path | None = None, preexec_fn=None) -> subprocess.Popen:
    """Start argv with stdout+stderr into log_path, in its own session."""
    with open(log_path, "ab") as log:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                env=env, cwd=cwd, start_new_session=True,
                                preexec_fn=preexec_fn)


def base_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUPTIME_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


# ---------------------------------------------------------------- the log

class LogFile:
    """A log file read incrementally; each line is stamped with when it was first seen."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._partial = b""
        self.lines: list[tuple[float, str]] = []

    def poll(self) -> None:
        try:
            with open(self.path, "rb") as f:
                f.seek(self._offset)
                data = f.read()
        except FileNotFoundError:
            return
        if not data:
            return
        now = time.monotonic()
        self._offset += len(data)
        data = self._partial + data
        *complete, self._partial = data.split(b"\n")
        for raw in complete:
            self.lines.append((now, raw.decode("utf-8", "replace")))

    def text(self) -> str:
        self.poll()
        return "\n".join(line for _, line in self.lines)

    def tail(self, n: int = 25) -> str:
        self.poll()
        return "\n".join(line for _, line in self.lines[-n:])

    def find(self, regex: re.Pattern, start: int = 0) -> tuple[int, float, re.Match] | None:
        """First line at index >= start matching regex: (index, time seen, match)."""
        for index in range(start, len(self.lines)):
            seen, line = self.lines[index]
            match = regex.search(line)
            if match:
                return index, seen, match
        return None

    def wait(self, regex: re.Pattern, timeout: float, start: int = 0,
             fail: re.Pattern | None = None,
             alive=None) -> tuple[int, float, re.Match]:
        """Wait for a line matching regex (at index >= start); BenchError on timeout.

        If `fail` matches first, its match is raised as BenchError too; `alive()`
        returning False ends the wait early.
        """
        deadline = time.monotonic() + timeout
        dead_since = None
        while True:
            self.poll()
            found = self.find(regex, start)
            if found:
                return found
            if fail is not None:
                bad = self.find(fail, start)
                if bad:
                    raise BenchError(bad[2].group(0))
            # A process that execs from a second thread shows as a zombie for a moment
            # (the kernel retires the old thread-group leader): only a lasting death counts.
            if alive is not None and not alive():
                dead_since = dead_since or time.monotonic()
                if time.monotonic() - dead_since >= DEATH_GRACE:
                    raise BenchError(f"process gone before {regex.pattern!r}; log tail:\n"
                                     + self.tail())
            else:
                dead_since = None
            if time.monotonic() >= deadline:
                raise BenchError(f"no {regex.pattern!r} within {timeout:.0f}s; log tail:\n"
                                 + self.tail())
            time.sleep(POLL)


# ---------------------------------------------------------------- a server under huptime

class Served:
    """A command under huptime: started with Popen, followed through its log."""

    def __init__(self, command: list[str], log_path: Path, *, exec_mode: bool = False,
                 env: dict[str, str] | None = None, cwd: Path | None = None,
                 options: list[str] = ()) -> None:
        self.command = command
        self.exec_mode = exec_mode
        self.argv = [*HUPTIME, *(["--exec"] if exec_mode else []), *options, "--", *command]
        self.env = base_env(env)
        self.cwd = cwd
        self.log = LogFile(log_path)
        self.popen: subprocess.Popen | None = None
        self.leader = 0
        self.generation = 0

    def start(self, timeout: float = 30.0) -> Served:
        self.popen = spawn(self.argv, self.log.path, env=self.env, cwd=self.cwd)
        self.leader = self.popen.pid  # the launcher execs the program: same PID
        self.log.wait(re.compile(r"generation 1 serving"), timeout, alive=self.alive)
        self.generation = 1
        return self

    def alive(self) -> bool:
        if self.popen is not None and self.leader == self.popen.pid:
            return self.popen.poll() is None  # our child: poll() keeps its exit status
        return is_alive(self.leader)

    def status(self) -> str:
        """How the first process ended, if it did (exec mode: the leader itself)."""
        code = self.popen.poll() if self.popen is not None else None
        if code is None:
            return "running"
        if code < 0:
            return f"killed by {signal.Signals(-code).name}"
        return f"exited with status {code}"

    def reap(self) -> None:
        """Reap generations that have exited; the first process is left to Popen."""
        reap_zombies(keep=(self.popen.pid,) if self.popen is not None else ())

    def restart(self, timeout: float = 30.0) -> tuple[float, float]:
        """Signal the leader; wait until the next generation serves.

        Returns (time of the signal, time the "generation N serving" line was seen),
        both time.monotonic(). Raises BenchError if the restart fails or times out.
        """
        n = self.generation + 1
        self.log.poll()
        start = len(self.log.lines)
        failed = re.compile(rf"restart failed: generation {n}\b[^\n]*")
        sent = time.monotonic()
        os.kill(self.leader, signal.SIGHUP)
        if not self.exec_mode:
            _, _, ready = self.log.wait(re.compile(rf"generation {n} \(pid (\d+)\) ready"),
                                        timeout, start, fail=failed)
            self.leader = int(ready.group(1))
        try:
            _, seen, _ = self.log.wait(re.compile(rf"generation {n} serving"), timeout, start,
                                       fail=failed, alive=self.alive)
        except BenchError as exc:
            if self.exec_mode:
                raise BenchError(f"{exc}".replace("process gone", f"leader {self.status()}",
                                                  1)) from None
            raise
        self.generation = n
        return sent, seen


def wait_port(port: int, timeout: float, path: str = "/", alive=None) -> None:
    """Wait until 127.0.0.1:port answers one HTTP request for path with an OK."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if alive is not None and not alive():
            raise BenchError(f"server for port {port} exited before listening")
        result = run_load(port, path=path, clients=1, duration=1.0, max_requests=1, timeout=1.0)
        if result.ok:
            return
        time.sleep(0.05)
    raise BenchError(f"nothing answered on port {port} within {timeout:.0f}s")


# ---------------------------------------------------------------- numbers

def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def median(values: list[float]) -> float:
    return statistics.median(values)


def table(headers: list[str], rows: list[list[str]], right: set[int] | None = None) -> str:
    """Plain-text table; columns in `right` (default: all but the first two) right-aligned."""
    right = set(range(2, len(headers))) if right is None else right
    widths = [max(len(str(row[i])) for row in [headers, *rows]) for i in range(len(headers))]

    def line(cells):
        return "  ".join(str(c).rjust(w) if i in right else str(c).ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()
    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])
