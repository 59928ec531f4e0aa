"""systemd's socket activation, for real: systemd-socket-activate (Debian's systemd
package) binds, then execs huptime with LISTEN_FDS; the unmodified server under it
binds the same address itself and must get the passed socket, in every generation.
"""

from __future__ import annotations

import shutil
import threading

import pytest

from support.build import free_port
from support.load import LoadRunner, run_load
from support.served import Served, XprocessStarter
from support.servers import server_command
from support.wait import wait_for

ACTIVATE = shutil.which("systemd-socket-activate")
RESTARTS = 5

pytestmark = pytest.mark.skipif(not ACTIVATE, reason="systemd-socket-activate is not installed "
                                                     "(Debian: systemd)")


def start_activated(xprocess, name: str, command: list[str], ports: list[int],
                    **options) -> Served:
    """command under huptime under systemd-socket-activate listening on ports; the
    activator execs huptime at the first connection, which is made here (and must be
    answered)."""
    wrapper = [ACTIVATE, *(f"--listen=127.0.0.1:{p}" for p in ports)]
    served = Served(XprocessStarter(xprocess, name), command, wrapper=wrapper, **options)
    answered = []
    poke = threading.Thread(target=lambda: answered.append(wait_for(
        lambda: run_load(ports[0], clients=1, max_requests=1, timeout=30).ok, 30,
        "the first connection answered")))
    poke.start()
    served.start()
    poke.join(60)
    assert answered == [1]
    return served


@pytest.mark.parametrize("mode", ["fork", "exec"])
def test_an_unmodified_server_serves_from_the_passed_socket(xprocess, port, build_dir, mode):
    served = start_activated(xprocess, f"activate-{mode}", server_command("threaded", port,
                             build_dir), [port], exec_mode=mode == "exec")
    with LoadRunner(port, clients=8, duration=120.0) as load:
        load.wait_until(lambda r: r.ok >= 50)
        for _ in range(RESTARTS):
            served.restart()
            load.wait_until(lambda r: r.saw(f"gen={served.generation}"))
    assert load.result.failed == 0, load.result.summary()
    assert "Address already in use" not in served.log()
    served.stop()


def test_a_passed_socket_the_program_does_not_bind_stays_open(xprocess, port, build_dir):
    other = free_port()
    served = start_activated(xprocess, "activate-two", server_command("threaded", port,
                             build_dir), [port, other])
    served.wait_log(r"generation 1: 1 inherited listener not bound by the program within "
                    r"\d+ ms; left open and unused")
    assert run_load(port, clients=2, max_requests=10).ok == 10
    served.stop()
