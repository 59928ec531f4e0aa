"""What every Python test server shares: the behaviour file, the routes, the replies.

Imported by the server scripts next to it (their directory is on sys.path when run
as `python tests/servers/NAME.py PORT`).
"""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import sys
import time

SLOW_SECONDS = 0.3
HEAD_LIMIT = 65536
BACKLOG = 128
REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 500: "Internal Server Error"}
BROKEN = False  # `error500` in the behaviour file: every request gets a 500
SERVED = itertools.count(1)  # requests this process answered (next() is atomic in CPython)


def port_from_argv() -> int:
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} PORT")
    return int(sys.argv[1])


def obey_behaviour_file() -> None:
    """Simulate a broken version if $HT_BEHAVIOUR_FILE says `crash` or `hang` (call before
    bind), or `error500` (it starts and serves, but every request gets a 500)."""
    global BROKEN
    path = os.environ.get("HT_BEHAVIOUR_FILE")
    if not path:
        return
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            behaviour = f.read()
    except OSError:
        return
    BROKEN = "error500" in behaviour
    if "crash" in behaviour:
        print("crashing", flush=True)
        sys.exit(3)
    if "hang" in behaviour:
        while True:
            time.sleep(3600)


def claim_pid_file() -> None:
    """Like many daemons: refuse to start (status 1) while $HT_PIDFILE exists, else write it."""
    path = os.environ.get("HT_PIDFILE")
    if not path:
        return
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        print(f"pid file {path} exists: is another copy running?", flush=True)
        sys.exit(1)
    os.write(fd, f"{os.getpid()}\n".encode())
    os.close(fd)


HELPER = """import sys, time
time.sleep(float(sys.argv[2]))
with open(sys.argv[1], "a") as f:
    f.write(f"generation {sys.argv[3]} helper done\\n")
"""


def start_helper_child() -> None:
    """If $HT_HELPER_SECONDS is set: start a child program that sleeps that long, then
    appends "generation N helper done" to $HT_HELPER_MARKER. Never waited for."""
    seconds = os.environ.get("HT_HELPER_SECONDS")
    if not seconds:
        return
    generation = os.environ.get("HUPTIME_GENERATION", "0")
    child = subprocess.Popen([sys.executable, "-c", HELPER, os.environ["HT_HELPER_MARKER"],
                              seconds, generation])
    print(f"generation {generation} helper pid {child.pid}", flush=True)


def announce(port: int) -> None:
    """Tell the test the server is listening; call after listen()."""
    print(f"listening on {port}", flush=True)


def identity() -> bytes:
    generation = os.environ.get("HUPTIME_GENERATION", "0")
    return f"pid={os.getpid()} gen={generation}\n".encode()


def route(request_head: bytes) -> tuple[float, int, bytes]:
    """Map a request head to (delay before replying, status, body). /stats says how
    many requests this process answered, this one included."""
    served = next(SERVED)
    parts = request_head.split(b"\r\n", 1)[0].split()
    if len(parts) != 3 or parts[0] != b"GET":
        return 0.0, 400, b"bad request\n"
    if BROKEN:
        return 0.0, 500, b"broken version\n"
    if parts[1] == b"/stats":
        return 0.0, 200, f"served={served} ".encode() + identity()
    if parts[1] == b"/":
        return 0.0, 200, identity()
    if parts[1] == b"/slow":
        return SLOW_SECONDS, 200, identity()
    return 0.0, 404, b"not found\n"


def bound_socket(port: int) -> socket.socket:
    """A TCP socket bound to 127.0.0.1:port with SO_REUSEADDR, not listening yet."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    return sock


def answer(conn: socket.socket, slow: bool = True) -> None:
    """Read one request head from conn (10 s at most), reply as route() says (without
    its delay unless slow), close; a client that goes away gets nothing."""
    with conn:
        conn.settimeout(10.0)
        head = b""
        try:
            while b"\r\n\r\n" not in head and len(head) < HEAD_LIMIT:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                head += chunk
            delay, status, body = route(head)
            if slow:
                time.sleep(delay)
            conn.sendall(render(status, body))
        except OSError:
            pass  # the client went away; nothing to answer


def render(status: int, body: bytes) -> bytes:
    head = (f"HTTP/1.0 {status} {REASONS[status]}\r\n"
            f"Content-Type: text/plain\r\n"
            f"Content-Length: {len(body)}\r\n"
            f"Connection: close\r\n\r\n")
    return head.encode("ascii") + body
