"""What demo.py and bench.py share: processes, restarts, cleanup, numbers.

No pytest, no xprocess: servers are started with subprocess.Popen (the PopenStarter
of tests/support/served.py), their stdout and stderr go to a log file, and
generations are followed through the shim's own log lines (docs/protocol.md), by the
same Served class the tests use. This process makes itself a child subreaper, so
fork-mode generations orphaned by a restart stay its descendants; end_descendants()
kills every one of them by PID and reaps them.
"""

from __future__ import annotations

import math
import signal
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from support.build import free_port  # noqa: E402,F401
from support.huptime import clean_env, forget_huptime_settings  # noqa: E402,F401
from support.load import LoadResult, LoadRunner, run_load  # noqa: E402,F401
from support.proc import (  # noqa: E402,F401
    become_subreaper, cpu_seconds, end_descendants, is_alive)
from support.served import (  # noqa: E402,F401
    LogFile, PopenStarter, Served, ServedError, spawn)
from support.servers import NAMES, find_nginx, make_server, server_command  # noqa: E402,F401
from support.syscalls import calls_per_batch  # noqa: E402,F401
from support.keepalive import close_all, open_idle  # noqa: E402,F401
from support.wait import wait_for  # noqa: E402

POLL = 0.001  # seconds between looks at a log file or at the load's replies
FAILURE_CLASSES = LoadResult.FAILURES


class BenchError(ServedError):
    """A measurement could not be made; the message says why (with a log tail).
    Waits on a server raise ServedError, its base class, or TimeoutError."""


def check_environment() -> None:
    """huptime importable from this interpreter, no stale huptime settings inherited."""
    try:
        shim_path()
    except Exception as exc:  # noqa: BLE001 - any reason is reported the same way
        sys.exit(f"huptime is not installed for {sys.executable} ({exc}); "
                 f"run `make install` and use .venv/bin/python")
    forget_huptime_settings()


def shim_path() -> Path:
    import huptime.launcher as launcher
    return launcher.shim_path()


def prepare() -> None:
    """Before measuring: huptime present, SIGTERM handled, a child subreaper."""
    check_environment()
    install_exit_handlers()
    become_subreaper()


def run_main(main: Callable[[], int]) -> None:
    """Exit with main()'s status; on Ctrl-C or SIGTERM end every process started, 130."""
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        end_descendants()
        sys.exit(130)


# ---------------------------------------------------------------- processes

def install_exit_handlers() -> None:
    """SIGTERM/SIGINT end the run through KeyboardInterrupt, so cleanup runs."""
    def interrupt(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, interrupt)


def served(command: list[str], log_path: Path, *, exec_mode: bool = False,
           cwd: Path | None = None, options: list[str] | None = None) -> Served:
    """A command under huptime (with options), started with Popen (output into
    log_path), not started yet."""
    return Served(PopenStarter(log_path), command, exec_mode=exec_mode, cwd=cwd, every=POLL,
                  options=options or [])


def wait_port(port: int, timeout: float, path: str = "/", alive=None) -> None:
    """Wait until 127.0.0.1:port answers one HTTP request for path with an OK."""
    def answered() -> bool:
        if alive is not None and not alive():
            raise BenchError(f"server for port {port} exited before listening")
        return run_load(port, path=path, clients=1, duration=1.0, max_requests=1,
                        timeout=1.0).ok > 0

    wait_for(answered, timeout, f"answer on port {port}", every=0.05)


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
