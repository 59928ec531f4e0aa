"""--backlog: every listen queue is at least N long, so the moment of a restart never
drops a SYN. python -m http.server asks for a queue of 5: eight clients overflow it
whenever the server looks away, and a client whose SYN is dropped waits a second for
its retransmission.

The queue's length is seen from the kernel's behaviour: with the server stopped
(SIGSTOP), connections complete their handshake only while the accept queue has room;
the others' SYNs are dropped and their connect() times out.
"""

from __future__ import annotations

import os
import signal
import socket

import pytest

from support.load import LoadRunner

QUEUED = 40  # more than the program's own queue (5), fewer than --backlog's default


def queue_room(port: int, leader: int, tries: int = QUEUED) -> int:
    """How many of `tries` connections complete while the server is stopped."""
    os.kill(leader, signal.SIGSTOP)
    socks, done = [], 0
    try:
        for _ in range(tries):
            s = socket.socket()
            s.settimeout(0.3)  # a dropped SYN is retransmitted after 1 s
            try:
                s.connect(("127.0.0.1", port))
                done += 1
            except OSError:
                pass
            socks.append(s)
    finally:
        os.kill(leader, signal.SIGCONT)
        for s in socks:
            s.close()
    return done


def listen_overflows() -> int:
    """TcpExtListenOverflows of this network namespace."""
    with open("/proc/net/netstat") as f:
        head, values = [line.split() for line in f if line.startswith("TcpExt:")][:2]
    return int(dict(zip(head[1:], values[1:]))["ListenOverflows"])


@pytest.mark.parametrize("mode", ["fork", "exec"])
def test_listen_queues_are_long_enough_for_a_restart(serve, port, mode):
    _, served = serve("http.server", exec_mode=mode == "exec")
    assert queue_room(port, served.leader) == QUEUED, "the default --backlog (511) applies"
    overflows = listen_overflows()
    with LoadRunner(port, clients=8, duration=120.0) as load:
        load.wait_until(lambda r: r.ok >= 50)
        for _ in range(5):
            served.restart()
            before = load.snapshot().ok
            load.wait_until(lambda r, b=before: r.ok >= b + 20)
    assert load.result.failed == 0, load.result.summary()
    assert listen_overflows() == overflows, "no SYN dropped because the queue was full"
    assert queue_room(port, served.leader) == QUEUED, "and in every new generation"
    served.stop()


def test_backlog_0_keeps_the_programs_own_queue(serve, port):
    """The negative control: http.server's own queue holds its 5 (and the kernel one
    more), no more."""
    _, served = serve("http.server", options=["--backlog", "0"])
    assert queue_room(port, served.leader) < 10
    served.stop()
