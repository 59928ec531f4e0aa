"""The hot path: a busy server pays no system call for the shim.

strace counts every system call of a server that answers each connection in its
accepting thread (tests/servers/cserver.c -DUSE_ACCEPT4 -DINLINE), bare and under the
shim. The clients are queued before the server runs (it is stopped while they
connect), so it is never idle: per connection it makes the same calls every time, and
the count is exact. Two runs, with K and 2K queued clients, give the calls of K
connections by difference, so start-up, the first client and the final wait cancel.
The one thing that varies is the call the stop interrupts (restarted as itself or as
restart_syscall): at most STOP_NOISE calls, far below one call per connection (K).
"""

from __future__ import annotations

import collections
import os
import re
import shutil
import signal
import socket
import subprocess
import time

import pytest

from huptime.launcher import shim_path
from support.huptime import clean_env
from support.process import WatchedProcess
from support.servers import listening_line, server_command
from support.wait import wait_for

K = 50  # queued clients of the smaller run; the listen backlog holds 2K
STOP_NOISE = 2  # calls that the stop and continue may add to a run
CALL = re.compile(r"^\d+\s+([a-z0-9_]+)\(")  # a call (not "<... NAME resumed>")


def tasks_traced(pid: int) -> bool:
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


def queue_clients(port: int, clients: int) -> list[socket.socket]:
    """Connect `clients` clients, each sending its request (the server is stopped)."""
    socks = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(clients)]
    for s in socks:
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
    return socks


def calls(binary: list[str], shim: bool, clients: int, port: int, tmp_path) -> collections.Counter:
    """System calls, by name, of one server run that answers `clients` queued clients."""
    env = clean_env({"LD_PRELOAD": str(shim_path()), "HUPTIME_MODE": "fork"} if shim else {})
    out = tmp_path / f"strace-{shim}-{clients}.txt"
    server = WatchedProcess(["/bin/sh", "-c", 'export HUPTIME_PID=$$; exec "$@"', "sh",
                             *binary], env=env)
    tracer = None
    try:
        server.wait_for_line(listening_line(port), 30)
        tracer = subprocess.Popen(["strace", "-f", "-qq", "-o", str(out), "-p", str(server.pid)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_for(lambda: tasks_traced(server.pid), 10, "strace attached to every thread")
        os.kill(server.pid, signal.SIGSTOP)
        socks = queue_clients(port, clients)
        os.kill(server.pid, signal.SIGCONT)
        for s in socks:
            reply = b""
            while chunk := s.recv(4096):
                reply += chunk
            s.close()
            assert reply.startswith(b"HTTP/1.0 200 OK"), reply[:80]
        # Idle again: every thread waits in the kernel (the replies are all out).
        wait_for(lambda: all(open(f"/proc/{server.pid}/task/{t}/stat").read().split(") ")[1][0]
                             in "St" for t in os.listdir(f"/proc/{server.pid}/task")),
                 10, "the server idle")
        time.sleep(0.2)  # strace writes the last lines it saw
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


def test_a_busy_server_pays_no_system_call_for_the_shim(port, build_dir, tmp_path):
    if not shutil.which("strace"):
        pytest.fail("strace is needed here (.ci/run installs it)")
    binary = server_command("c-inline", port, build_dir)
    per = {}
    for shim in (False, True):
        small = calls(binary, shim, K, port, tmp_path)
        large = calls(binary, shim, 2 * K, port, tmp_path)
        per[shim] = {name: large[name] - small[name] for name in large | small
                     if large[name] != small[name]}
    # Stopping and continuing the server may add one restarted call (accept4, or
    # restart_syscall) to a run: at most 2 per name, where one call per connection
    # would be K.
    added = {name: per[True].get(name, 0) - per[False].get(name, 0)
             for name in per[True] | per[False]}
    assert all(abs(n) <= STOP_NOISE for n in added.values()), \
        f"for {K} connections: bare {per[False]}, shim {per[True]}"
    for name in ("accept4", "recvfrom", "sendto", "close"):
        assert abs(per[False][name] - K) <= STOP_NOISE, per[False]
