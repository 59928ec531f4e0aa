"""Smoke test of an installed huptime package (.ci/run runs it after `apt-get install`).

    /usr/bin/python3 tests/smoke_installed.py [/usr/bin/huptime]

Uses only the installed files and the system python3: starts python3 -m http.server
under the installed huptime, restarts it once under load with `huptime --restart`,
checks that the installed shim was preloaded and that no request failed, then stops
it. Exits non-zero with one line on any failure; every process it started is ended.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
# Only modules that need nothing but the standard library: the system python3 runs this.
from support.build import free_port  # noqa: E402
from support.load import LoadRunner  # noqa: E402
from support.wait import wait_for  # noqa: E402

SYSTEM_PYTHON = "/usr/bin/python3"


def wait_for_text(path: Path, text: str, timeout: float = 30.0) -> None:
    try:
        wait_for(lambda: text in path.read_text(errors="replace"), timeout, repr(text),
                 every=0.05, detail=lambda: f"log:\n{path.read_text(errors='replace')}")
    except TimeoutError as exc:
        raise SystemExit(f"smoke: {exc}") from None


def load_started(work: Path) -> bool:
    """A generation may have been re-parented away from us after a restart."""
    return any((work / "run" / "huptime").glob("*/gen-*"))


def main() -> int:
    huptime = sys.argv[1] if len(sys.argv) > 1 else "/usr/bin/huptime"
    port = free_port()
    work = Path(tempfile.mkdtemp(prefix="huptime-smoke-"))
    (work / "run").mkdir(mode=0o700)
    env = {**os.environ, "XDG_RUNTIME_DIR": str(work / "run")}
    env.pop("LD_PRELOAD", None)
    command = [SYSTEM_PYTHON, "-m", "http.server", "--bind", "127.0.0.1", "--directory",
               str(work), str(port)]
    log = work / "server.log"
    with open(log, "w") as out:
        server = subprocess.Popen([huptime, *command], stdout=out, stderr=subprocess.STDOUT,
                                  env=env)
    try:
        wait_for_text(log, "generation 1 serving")
        maps = Path(f"/proc/{server.pid}/maps").read_text()
        shims = {line.split()[-1] for line in maps.splitlines() if "libhuptime.so" in line}
        print(f"smoke: shim preloaded from {', '.join(sorted(shims))}")
        if not shims or any(not s.startswith("/usr/") for s in shims):
            raise SystemExit("smoke: the installed shim was not the one preloaded")
        with LoadRunner(port, clients=8, duration=60.0) as load:
            load.wait_until(lambda r: r.ok >= 50, timeout=20)
            done = subprocess.run([huptime, "--restart", "--", *command], capture_output=True,
                                  text=True, timeout=90, env=env)
            if done.returncode != 0:
                raise SystemExit(f"smoke: --restart failed: {done.stderr.strip()}")
            print(f"smoke: {done.stdout.strip()}")
            before = load.snapshot().ok
            load.wait_until(lambda r: r.ok >= before + 50, timeout=20)
        result = load.result
        print(f"smoke: {result.ok} requests, {result.failed} failed")
        if result.failed or not result.ok:
            raise SystemExit(f"smoke: failed requests: {result.summary()}")
        stop = subprocess.run([huptime, "--stop", "--", *command], capture_output=True,
                              text=True, timeout=60, env=env)
        if stop.returncode != 0:
            raise SystemExit(f"smoke: --stop failed: {stop.stderr.strip()}")
        server.wait(10)
        print("smoke: ok")
        return 0
    finally:  # on failure: end the instance through huptime, then what we started
        if server.poll() is None or load_started(work):
            subprocess.run([huptime, "--stop", "--timeout", "5", "--", *command],
                           capture_output=True, timeout=60, env=env)
        if server.poll() is None:
            os.kill(server.pid, signal.SIGKILL)
        server.wait(10)


if __name__ == "__main__":
    sys.exit(main())
