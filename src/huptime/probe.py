"""--probe-http PATH: `python -m huptime.probe PATH` is the probe command.

GET PATH on $HUPTIME_PROBE_ADDR (host:port, [v6]:port, /unix/path or @abstract),
HTTP/1.0: exit 0 on a 2xx status, else 1 with one line saying what came back. The
shim bounds it with --probe-timeout and reports its output when it fails.
"""

from __future__ import annotations

import os
import socket
import sys

from huptime import protocol

LIMIT = 65536  # bytes of the reply read before the status line must have come


def connect(addr: str) -> socket.socket:
    """A connected stream socket to a probe address."""
    if addr.startswith(("/", "@")):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect("\0" + addr[1:] if addr.startswith("@") else addr)
        return sock
    host, _, port = addr.rpartition(":")
    family = socket.AF_INET6 if host.startswith("[") else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.connect((host.strip("[]"), int(port)))
    return sock


def status_line(addr: str, path: str) -> str:
    host = addr if not addr.startswith(("/", "@")) else "localhost"
    with connect(addr) as sock:
        sock.sendall(f"GET {path} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: huptime-probe\r\n"
                     "Connection: close\r\n\r\n".encode())
        data = b""
        while b"\n" not in data and len(data) < LIMIT:
            chunk = sock.recv(LIMIT)
            if not chunk:
                break
            data += chunk
    return data.split(b"\n", 1)[0].decode("latin-1").strip()


def main(argv: list[str]) -> int:
    if len(argv) != 2 or not argv[1].startswith("/"):
        print("usage: python -m huptime.probe PATH", file=sys.stderr)
        return 2
    addr = os.environ.get(protocol.ENV_PROBE_ADDR, "")
    if not addr:
        print(f"{protocol.ENV_PROBE_ADDR} is not set: run by huptime --probe-http",
              file=sys.stderr)
        return 2
    try:
        line = status_line(addr, argv[1])
    except (OSError, ValueError) as exc:
        print(f"GET {argv[1]} on {addr}: {exc}")
        return 1
    parts = line.split()
    if len(parts) >= 2 and parts[0].startswith("HTTP/") and parts[1].isdigit() \
            and parts[1].startswith("2") and len(parts[1]) == 3:
        return 0
    print(f"GET {argv[1]} on {addr}: {line or 'no reply'}")
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
