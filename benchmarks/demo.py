"""`make demo`: python3 -m http.server under huptime, restarted 20 times under load.

Starts `python -m http.server` (serving a temporary directory with a small file)
under huptime in fork mode, loads it with 8 clients (a new connection per request),
sends SIGHUP to the current leader 20 times (each time waiting for the shim's
"generation N serving" line), stops the load and prints what the clients saw.
Exit status 0 if no request failed, 1 otherwise.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchlib as b  # noqa: E402

RESTARTS = 20
CLIENTS = 8
DWELL = 0.15          # seconds of load on each generation before the next restart
RESTART_TIMEOUT = 20.0
LOAD_LIMIT = 120.0    # upper bound on the load run; it is stopped long before


def main() -> int:
    b.prepare()
    print(f"huptime demo: python3 -m http.server under huptime (fork mode), {CLIENTS} clients "
          f"(new connection per request), {RESTARTS} restarts by SIGHUP; every request counted.",
          flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="huptime-demo-"))
    load = None
    switches: list[float] = []
    restarts = 0
    error = None
    started = time.monotonic()
    try:
        port = b.free_port()
        server = b.make_server("http.server", port, tmp, tmp)
        served = b.served(server.command, tmp / "server.log").start()
        load = b.LoadRunner(port, path=server.path, clients=CLIENTS, duration=LOAD_LIMIT,
                            timeout=5.0).start()
        load.wait_until(lambda r: r.ok >= 20, timeout=10.0)
        for _ in range(RESTARTS):
            served.restart(RESTART_TIMEOUT)
            sent, seen = served.sent_at, served.serving_at
            switches.append(seen - sent)
            restarts += 1
            served.reap()
            if sys.stdout.isatty():
                print(f"\r  restart {restarts}/{RESTARTS}: generation {served.generation} "
                      f"(pid {served.leader}) serving after {1000 * (seen - sent):.0f} ms ",
                      end="", flush=True)
            time.sleep(DWELL)
    except (b.ServedError, TimeoutError) as exc:
        error = str(exc)
    finally:
        result = load.stop() if load is not None else b.LoadResult()
        b.end_descendants()
    elapsed = time.monotonic() - started
    if sys.stdout.isatty():
        print()

    rows = [["restarts done", f"{restarts}/{RESTARTS}"],
            ["requests ok", str(result.ok)]]
    for kind in b.FAILURE_CLASSES:
        rows.append([f"failed: {kind}", str(getattr(result, kind))])
    rows.append(["failed total", str(result.failed)])
    if switches:
        rows.append(["switch time median", f"{1000 * b.median(switches):.1f} ms"])
        rows.append(["switch time max", f"{1000 * max(switches):.1f} ms"])
    rows.append(["run time", f"{elapsed:.1f} s ({result.rate:.0f} requests/s)"])
    print()
    print(b.table(["outcome", "value"], rows, right={1}))
    print("(switch time: SIGHUP sent -> the shim's \"generation N serving\" line seen)")
    if result.error_samples:
        print("failure samples:", *result.error_samples, sep="\n  ")
    if result.abandoned:
        print(f"{result.abandoned} load threads did not finish")
    if error:
        print(f"error: {error}")
    shutil.rmtree(tmp, ignore_errors=True)
    ok = error is None and restarts == RESTARTS and result.failed == 0 and result.ok > 0
    print("PASS: no request failed" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    b.run_main(main)
