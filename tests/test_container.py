"""huptime as a container's entrypoint: the first process (PID 1) of a PID namespace.

util-linux's `unshare --pid --fork --mount-proc huptime ...` makes huptime PID 1, as a
container runtime does. The end of a namespace's PID 1 kills every process in it, so
huptime must stay PID 1 while generations come and go (fork mode), reap the orphans
the kernel hands it, stop gracefully on the runtime's SIGTERM and exit with the
program's status.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys

import psutil
import pytest

from support.huptime import HUPTIME, clean_env
from support.proc import live_descendants
from support.served import Served, XprocessStarter
from support.servers import server_command
from support.wait import wait_for

UNSHARE = ["unshare", "--pid", "--fork", "--mount-proc"]
RESTARTS = 10


def namespaces_work() -> bool:
    if not shutil.which("unshare"):
        return False
    done = subprocess.run([*UNSHARE, "true"], capture_output=True, timeout=30)
    return done.returncode == 0


pytestmark = pytest.mark.skipif(not namespaces_work(),
                                reason="cannot make a PID namespace here (unshare --pid)")


class InNamespace(Served):
    """A server under huptime inside a new PID namespace. The log's PIDs are the
    namespace's; signals go to huptime by its PID out here (unshare's child)."""

    def huptime_pid(self) -> int:
        return wait_for(lambda: next(iter(psutil.Process(self.unshare).children()), None),
                        10, "huptime under unshare").pid

    def start(self, timeout: float = 30.0) -> InNamespace:
        super().start(timeout)
        self.unshare = self.leader
        self.outside = self.huptime_pid()
        return self

    def alive(self) -> bool:
        return psutil.pid_exists(self.unshare)

    def signal(self) -> None:
        os.kill(self.outside, self.signum)

    def stop(self, timeout: float = 30.0) -> None:
        os.kill(self.outside, signal.SIGTERM)  # what `docker stop` sends
        wait_for(lambda: not live_descendants(), timeout,
                 lambda: f"end after SIGTERM; still running: {live_descendants()}")


def zombies_under(pid: int) -> list[int]:
    return [p.pid for p in psutil.Process(pid).children(recursive=True)
            if p.status() == psutil.STATUS_ZOMBIE]


def test_fork_mode_restarts_as_pid_1_under_load(xprocess, port, build_dir, tmp_path):
    command = server_command("threaded", port, build_dir)
    served = InNamespace(XprocessStarter(xprocess, "pid1"), command, wrapper=UNSHARE,
                         env={"HT_HELPER_SECONDS": "0.2",
                              "HT_HELPER_MARKER": str(tmp_path / "helpers")}).start()
    [nspid] = [line.split()[1:] for line in open(f"/proc/{served.outside}/status")
               if line.startswith("NSpid:")]
    assert nspid == [str(served.outside), "1"], nspid  # huptime is PID 1 in there
    result = served.restarts_under_load(port, RESTARTS, warm=50)
    assert result.failed == 0, result.summary()
    # Each generation's helper child outlived it, was re-parented to huptime and reaped.
    wait_for(lambda: not zombies_under(served.outside), 10,
             lambda: f"zombies under PID 1: {zombies_under(served.outside)}")
    served.stop()


def test_pid_1_exits_with_the_programs_status():
    done = subprocess.run([*UNSHARE, *HUPTIME, "--", sys.executable, "-c",
                           "import sys; sys.exit(7)"], capture_output=True, text=True,
                          timeout=60, env=clean_env())
    assert done.returncode == 7, done
    assert "stopping (huptime is PID 1" in done.stderr, done.stderr
