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

import os
import re
import signal
import sys
import time
from pathlib import Path

from xprocess import ProcessStarter

from support.tree import live_descendants
from support.wait import wait_for

HUPTIME = [sys.executable, "-m", "huptime"]


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
        wait_for(lambda: not live_descendants(), timeout,
                 lambda: f"end after SIGTERM; still running: {live_descendants()}")

    def expect_rollback(self, timeout: float = 30.0) -> str:
        """Send the restart signal; return the logged reason the new generation failed."""
        before = len(re.findall(r"restart failed", self.log()))
        self.signal()
        line = self.wait_log(r"restart failed: ([^\n]*)", timeout, before + 1)
        return line.group(1)
