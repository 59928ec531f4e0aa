"""UDP sockets are handed over like listeners: the same socket serves every
generation, so datagrams sent while a restart runs are queued, not refused."""

from __future__ import annotations

import socket
import sys
import threading
import time
from pathlib import Path

import pytest

from support.proc import kernel_sockets
from support.wait import wait_for

SERVER = Path(__file__).parent / "servers" / "udp_server.py"
RESTARTS = 5


class Pinger:
    """Sends numbered datagrams one after another, each waiting up to 2 s for its
    answer, until stopped or 60 s passed."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.answered: list[str] = []
        self.lost = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.settimeout(2.0)
        end = time.monotonic() + 60
        n = 0
        while not self.stop.is_set() and time.monotonic() < end:
            n += 1
            sock.sendto(f"ping {n}".encode(), ("127.0.0.1", self.port))
            try:
                while True:  # skip late answers to earlier pings
                    data = sock.recv(2048).decode()
                    if data.startswith(f"ping {n} "):
                        self.answered.append(data)
                        break
            except TimeoutError:
                self.lost += 1
        sock.close()

    def wait_for(self, text: str, timeout: float = 30.0) -> None:
        wait_for(lambda: any(text in a for a in self.answered[-50:]), timeout,
                 f"answer with {text!r}")


def udp_sockets_on(port: int) -> int:
    return kernel_sockets(port, "udp")


@pytest.mark.parametrize("mode", ["fork", "exec"])
def test_a_udp_server_keeps_its_socket_and_loses_nothing(under_huptime, port, mode):
    served = under_huptime("udp", [sys.executable, str(SERVER), str(port)],
                           exec_mode=mode == "exec").start()
    pinger = Pinger(port)
    pinger.thread.start()
    pinger.wait_for("gen=1")
    for _ in range(RESTARTS):
        served.restart()
        pinger.wait_for(f"gen={served.generation}")
        assert udp_sockets_on(port) == 1, "one socket, handed over"
    pinger.stop.set()
    pinger.thread.join(10)
    assert pinger.lost == 0, f"{pinger.lost} of {pinger.lost + len(pinger.answered)} lost"
    assert len(pinger.answered) > 50


@pytest.mark.parametrize("mode", ["fork", "exec"])
def test_a_blocking_udp_server_is_ready_when_it_receives(under_huptime, port, mode):
    """recvfrom() on the handed-over socket counts as waiting for clients, and a
    thread blocked in it is woken when its generation stops."""
    served = under_huptime("udp-blocking", [sys.executable, str(SERVER), str(port), "blocking"],
                           exec_mode=mode == "exec", options=["--ready-timeout", "10"]).start()
    pinger = Pinger(port)
    pinger.thread.start()
    for _ in range(3):
        served.restart()
        pinger.wait_for(f"gen={served.generation}")
        assert udp_sockets_on(port) == 1
    pinger.stop.set()
    pinger.thread.join(10)
    assert "restart failed" not in served.log()
    assert pinger.lost == 0, f"{pinger.lost} of {pinger.lost + len(pinger.answered)} lost"
