"""System calls a server makes per connection, counted by strace: exact, where a
throughput ratio scatters.

The server answers clients that were queued while it was stopped (SIGSTOP), so it
is never idle while it works: it makes the same calls for every connection. Two runs,
with K and 2K queued clients, give the calls of K connections by difference: start-up,
the first client and the final wait cancel out. What can still vary is the call the
stop interrupts (restarted as itself or as restart_syscall): at most STOP_NOISE calls.
Used by tests/test_hotpath.py and benchmarks/bench.py.
"""

from __future__ import annotations

import collections
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

from .huptime import clean_env
from .process import WatchedProcess
from .servers import listening_line
from .wait import wait_for

STOP_NOISE = 2  # calls that stopping and continuing the server may add to one run
CALL = re.compile(r"^\d+\s+([a-z0-9_]+)\(")  # a call (not "<... NAME resumed>")


def _traced(pid: int) -> bool:
    """Every thread of pid has a tracer."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return False
    for tid in tids:
        with open(f"/proc/{pid}/task/{tid}/status") as f:
            if next(line for line in f if line.startswith("TracerPid:")).split()[1] == "0":
                return False
    return True


def _idle(pid: int) -> bool:
    """Every thread of pid sleeps (S) or is stopped by the tracer (t)."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/stat") as f:
            if f.read().rsplit(") ", 1)[1][0] not in "St":
                return False
    return True


def _answer_queued(port: int, pid: int, clients: int) -> None:
    """Queue `clients` requests while pid is stopped, then let it answer them all."""
    os.kill(pid, signal.SIGSTOP)
    try:
        socks = [socket.create_connection(("127.0.0.1", port), timeout=10)
                 for _ in range(clients)]
        for s in socks:
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
    finally:
        os.kill(pid, signal.SIGCONT)
    for s in socks:
        reply = b""
        while chunk := s.recv(4096):
            reply += chunk
        s.close()
        if not reply.startswith(b"HTTP/1.0 200 OK"):
            raise AssertionError(f"bad reply: {reply[:80]!r}")


def count_calls(argv: list[str], port: int, shim: Path | None, clients: int,
                out: Path) -> collections.Counter:
    """System calls, by name, of one run of argv (a test server on port) that answers
    `clients` queued clients, under the shim or bare."""
    env = clean_env({"LD_PRELOAD": str(shim), "HUPTIME_MODE": "fork"} if shim else {})
    server = WatchedProcess(["/bin/sh", "-c", 'export HUPTIME_PID=$$; exec "$@"', "sh", *argv],
                            env=env)
    tracer = None
    try:
        server.wait_for_line(listening_line(port), 30)
        tracer = subprocess.Popen(["strace", "-f", "-qq", "-o", str(out), "-p", str(server.pid)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_for(lambda: _traced(server.pid), 10, "strace attached to every thread")
        _answer_queued(port, server.pid, clients)
        wait_for(lambda: _idle(server.pid), 10, "the server idle again")
        time.sleep(0.2)  # strace writes what it saw last
    finally:
        if tracer:
            tracer.send_signal(signal.SIGINT)
            tracer.wait(10)
        server.kill()
    counts = collections.Counter()
    for line in out.read_text().splitlines():
        m = CALL.match(line)
        if m:
            counts[m.group(1)] += 1
    return counts


def calls_per_batch(argv: list[str], port: int, shim: Path | None, k: int,
                    work: Path) -> dict[str, int]:
    """The system calls of k connections, by name: the runs with 2k and k clients
    subtracted."""
    tag = "shim" if shim else "bare"
    small = count_calls(argv, port, shim, k, work / f"strace-{tag}-{k}.txt")
    large = count_calls(argv, port, shim, 2 * k, work / f"strace-{tag}-{2 * k}.txt")
    return {name: large[name] - small[name] for name in large | small
            if large[name] != small[name]}
