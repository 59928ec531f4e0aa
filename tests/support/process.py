"""A child process whose merged output is collected, waited on line by line, and killed by PID.

    with WatchedProcess([sys.executable, "server.py", "8000"]) as server:
        server.wait_for_line("listening on 8000", timeout=10)
        ...
    # leaving the block SIGKILLs the process (by its PID) and reaps it
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Sequence

REAP_TIMEOUT = 10.0
OUTPUT_GRACE = 2.0  # for the last output; a surviving grandchild may hold the pipe


class WatchedProcess:
    """Popen with stdout+stderr drained by a thread into a list of lines."""

    def __init__(self, argv: Sequence[str], *, env: dict[str, str] | None = None,
                 cwd: str | os.PathLike | None = None) -> None:
        self.argv = list(argv)
        self.popen = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      env=env, cwd=cwd)
        self._lines: list[str] = []
        self._eof = False
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._drain, daemon=True,
                                        name=f"output-of-{self.popen.pid}")
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.popen.pid

    def _drain(self) -> None:
        for raw in self.popen.stdout:
            with self._changed:
                self._lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self._changed.notify_all()
        self.popen.stdout.close()
        with self._changed:
            self._eof = True
            self._changed.notify_all()

    def output(self) -> str:
        """Everything the process printed so far."""
        with self._changed:
            return "\n".join(self._lines)

    def wait_for_line(self, text: str, timeout: float, count: int = 1) -> str:
        """Wait until `count` output lines contain `text`; return the last such line.

        Raises TimeoutError after `timeout` seconds, or RuntimeError as soon as the
        output ends (the process exited) without them.
        """
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                matches = [line for line in self._lines if text in line]
                if len(matches) >= count:
                    return matches[count - 1]
                if self._eof:
                    raise RuntimeError(f"{self.argv} ended output (exit "
                                       f"{self.popen.poll()}) before {count}x {text!r}:\n"
                                       f"{self.output()}")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no {count}x {text!r} from {self.argv} in "
                                       f"{timeout}s:\n{self.output()}")
                self._changed.wait(remaining)

    def wait(self, timeout: float) -> int:
        """Wait for the process to exit and return its status (TimeoutExpired if not)."""
        return self.popen.wait(timeout)

    def kill(self) -> int | None:
        """SIGKILL the process by its PID if still running, reap it, return its status."""
        if self.popen.poll() is None:
            try:
                os.kill(self.popen.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        status = self.popen.wait(REAP_TIMEOUT)
        self._reader.join(OUTPUT_GRACE)
        return status

    def __enter__(self) -> WatchedProcess:
        return self

    def __exit__(self, *exc_info) -> None:
        self.kill()
