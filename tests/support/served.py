"""A command under huptime, followed through the shim's log lines; started by a
pluggable starter: pytest-xprocess for the tests, subprocess.Popen for the benchmarks.

    served = Served(XprocessStarter(xprocess, "threaded"), [python, "server.py", "8000"])
    served.start()                 # waits for "generation 1 serving"
    served.restart()               # signal, wait for "generation 2 serving"
    served.expect_rollback()       # signal, wait for "restart failed: ..."

Generations are followed through the shim's own log lines (docs/protocol.md), so a
restart counts only once the new generation really waits for clients. The caller is a
child subreaper (support/proc.py): generations orphaned by a fork-mode restart stay
its descendants, and cleanup ends exactly those, by PID.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from .huptime import HUPTIME, clean_env
from .load import LoadResult, LoadRunner
from .proc import is_alive, live_descendants, reap_children
from .wait import wait_for

DEATH_GRACE = 1.0  # seconds a watched process must stay gone before a wait gives up on it
TAIL_LINES = 30


class ServedError(RuntimeError):
    """The server did not get where a wait expected: it logged a failure, or it died.
    The message says which, with the log's tail."""


class LogFile:
    """A log file read incrementally; each line is stamped with when it was first seen."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._offset = 0
        self._partial = b""
        self.lines: list[tuple[float, str]] = []

    def poll(self) -> int:
        """Read what was appended; return the number of complete lines."""
        try:
            with open(self.path, "rb") as f:
                f.seek(self._offset)
                data = f.read()
        except FileNotFoundError:
            return len(self.lines)
        if data:
            now = time.monotonic()
            self._offset += len(data)
            *complete, self._partial = (self._partial + data).split(b"\n")
            self.lines += [(now, raw.decode("utf-8", "replace")) for raw in complete]
        return len(self.lines)

    def text(self) -> str:
        """Everything so far, an unfinished last line included."""
        self.poll()
        return "\n".join([*(line for _, line in self.lines),
                          self._partial.decode("utf-8", "replace")])

    def tail(self, n: int = TAIL_LINES) -> str:
        self.poll()
        return "\n".join(line for _, line in self.lines[-n:])

    def find(self, regex: re.Pattern, start: int = 0,
             count: int = 1) -> tuple[int, float, re.Match] | None:
        """The count-th line at index >= start matching regex: (index, time seen, match)."""
        for index in range(start, len(self.lines)):
            seen, line = self.lines[index]
            match = regex.search(line)
            if match:
                count -= 1
                if count == 0:
                    return index, seen, match
        return None

    def wait(self, pattern: str | re.Pattern, timeout: float, start: int = 0, *,
             count: int = 1, fail: str | re.Pattern | None = None,
             alive: Callable[[], bool] | None = None,
             who: Callable[[], str] = lambda: "the process",
             every: float = 0.02) -> tuple[int, float, re.Match]:
        """Wait for the count-th line matching pattern at index >= start; return
        (index, time seen, match). TimeoutError after timeout; ServedError as soon as a
        line matches `fail`, or once alive() has stayed False for DEATH_GRACE seconds (the
        message names who())."""
        regex = re.compile(pattern)
        failure = re.compile(fail) if fail is not None else None
        dead_since: list[float] = []

        def found() -> tuple[int, float, re.Match] | None:
            self.poll()
            hit = self.find(regex, start, count)
            if hit:
                return hit
            bad = self.find(failure, start) if failure is not None else None
            if bad:
                raise ServedError(f"{bad[2].group(0)}; log tail:\n{self.tail()}")
            # A process that execs from a second thread shows as a zombie for a moment
            # (the kernel retires the old thread-group leader): only a lasting death counts.
            if alive is None or alive():
                dead_since.clear()
            elif not dead_since:
                dead_since.append(time.monotonic())
            elif time.monotonic() - dead_since[0] >= DEATH_GRACE:
                raise ServedError(f"{who()} is gone before {regex.pattern!r}; log tail:\n"
                                  + self.tail())
            return None

        return wait_for(found, timeout, f"{regex.pattern!r} (x{count}) in the log", every,
                        detail=lambda: "log tail:\n" + self.tail())


def spawn(argv: Sequence[str], log_path: Path, *, env: dict[str, str] | None = None,
          cwd: Path | None = None, preexec_fn=None) -> subprocess.Popen:
    """Start argv with stdout+stderr appended to log_path, in its own session."""
    with open(log_path, "ab") as log:
        return subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                env=env, cwd=cwd, start_new_session=True,
                                preexec_fn=preexec_fn)


class XprocessStarter:
    """Start through pytest-xprocess, which waits for the first generation itself and
    ends the process at the end of the session if the test did not."""

    def __init__(self, xprocess, name: str) -> None:
        self.xprocess = xprocess
        self.name = f"{name}-{os.getpid()}"  # never a stale pid file from another run
        self.pid = 0

    def launch(self, argv: list[str], env: dict[str, str], cwd: Path | None,
               ready: str, timeout: float) -> tuple[int, Path]:
        from xprocess import ProcessStarter

        if cwd is not None:
            argv = ["/bin/sh", "-c", 'cd "$0" && exec "$@"', str(cwd), *argv]

        class Starter(ProcessStarter):
            pattern = ready
            args = argv
            max_read_lines = 10_000
            terminate_on_interrupt = True

        Starter.env = env
        Starter.timeout = timeout
        self.pid, logpath = self.xprocess.ensure(self.name, Starter, restart=True,
                                                 persist_logs=False)
        return self.pid, Path(logpath)

    def alive(self, leader: int) -> bool:
        """Not watched: a daemonizing leader exits on purpose; waits end by timeout."""
        return True

    def leader_status(self, leader: int) -> str:
        return "running" if is_alive(leader) else "gone"


class PopenStarter:
    """Start with subprocess.Popen, stdout+stderr into log_path; a leader that dies
    ends a wait early."""

    def __init__(self, log_path: Path) -> None:
        self.log_path = Path(log_path)
        self.popen: subprocess.Popen | None = None
        self.pid = 0

    def launch(self, argv: list[str], env: dict[str, str], cwd: Path | None,
               ready: str, timeout: float) -> tuple[int, Path]:
        self.popen = spawn(argv, self.log_path, env=env, cwd=cwd)
        self.pid = self.popen.pid  # the launcher execs the program: the first leader
        return self.pid, self.log_path

    def alive(self, leader: int) -> bool:
        if self.popen is not None and leader == self.popen.pid:
            return self.popen.poll() is None  # our child: poll() keeps its exit status
        return is_alive(leader)

    def leader_status(self, leader: int) -> str:
        """How the leader ended, if it did; its exit status if it is our own child."""
        if self.alive(leader):
            return "running"
        code = self.popen.poll() if self.popen is not None and leader == self.popen.pid else None
        if code is None:
            return "gone"
        if code < 0:
            return f"killed by {signal.Signals(-code).name}"
        return f"exited with status {code}"


class Served:
    """A command under huptime; tracks the generation and its leader's PID."""

    def __init__(self, starter: XprocessStarter | PopenStarter, command: Sequence[str], *,
                 options: Sequence[str] = (), env: dict[str, str] | None = None,
                 signum: int = signal.SIGHUP, exec_mode: bool = False,
                 wrapper: Sequence[str] = (), cwd: Path | None = None,
                 every: float = 0.02) -> None:
        """wrapper: argv put before huptime's, e.g. a shell that ignores signals first;
        every: seconds between looks at the log."""
        self.starter = starter
        self.command = list(command)
        self.exec_mode = exec_mode
        self.args = [*wrapper, *HUPTIME, *(["--exec"] if exec_mode else []), *options,
                     "--", *command]
        self.env = clean_env(env)
        self.cwd = cwd
        self.signum = signum
        self.every = every
        self.generation = 0
        self.leader = 0
        self.logfile: LogFile | None = None
        self.sent_at = self.serving_at = 0.0  # of the last restart, time.monotonic()

    def start(self, timeout: float = 30.0) -> Served:
        """Start; return once generation 1 serves."""
        self.leader, logpath = self.starter.launch(self.args, self.env, self.cwd,
                                                   "generation 1 serving", timeout)
        self.logfile = LogFile(logpath)
        self.logfile.wait(r"generation 1 serving", timeout, alive=self.alive,
                          who=self._leader_status, every=self.every)
        self.generation = 1
        return self

    def alive(self) -> bool:
        return self.starter.alive(self.leader)

    def _leader_status(self) -> str:
        return f"leader {self.leader} ({self.starter.leader_status(self.leader)})"

    def log(self) -> str:
        return self.logfile.text()

    def wait_log(self, pattern: str, timeout: float = 30.0, count: int = 1) -> re.Match:
        """Wait until the log has `count` lines matching pattern; return the last match."""
        return self.logfile.wait(pattern, timeout, count=count, every=self.every)[2]

    def signal(self) -> None:
        os.kill(self.leader, self.signum)

    def restart(self, timeout: float = 30.0) -> int:
        """Send the restart signal; return the leader's PID once the next generation
        serves. ServedError if the restart fails; sent_at and serving_at say when the
        signal went and when the "serving" line was seen."""
        n = self.generation + 1
        start = self.logfile.poll()
        failed = rf"restart failed: generation {n}\b.*"
        self.sent_at = time.monotonic()
        self.signal()
        if not self.exec_mode:
            _, _, ready = self.logfile.wait(rf"generation {n} \(pid (\d+)\) ready", timeout,
                                            start, fail=failed, every=self.every)
            self.leader = int(ready.group(1))
        _, self.serving_at, _ = self.logfile.wait(
            rf"generation {n} serving", timeout, start, fail=failed, alive=self.alive,
            who=self._leader_status, every=self.every)
        self.generation = n
        return self.leader

    def restarts_under_load(self, port: int, restarts: int, warm: int = 20,
                            **options) -> LoadResult:
        """Restart `restarts` times while load runs on port (LoadRunner options, 8
        clients unless said); each restart counts once the new generation answered.
        The final load result."""
        with LoadRunner(port, duration=120.0, **{"clients": 8, **options}) as load:
            load.wait_until(lambda r: r.ok >= warm)
            for _ in range(restarts):
                self.restart()
                load.wait_until(lambda r: r.saw(f"gen={self.generation}"))
        return load.result

    def expect_rollback(self, timeout: float = 30.0) -> str:
        """Send the restart signal; return the logged reason the new generation failed."""
        start = self.logfile.poll()
        self.signal()
        return self.logfile.wait(r"restart failed: (.*)", timeout, start,
                                 every=self.every)[2].group(1)

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM to the leader; wait until every process of the server is gone."""
        os.kill(self.leader, signal.SIGTERM)
        wait_for(lambda: not live_descendants(), timeout,
                 lambda: f"end after SIGTERM; still running: {live_descendants()}")

    def reap(self) -> None:
        """Reap generations that have exited; the first process is left to its starter."""
        reap_children(keep=(self.starter.pid,))
