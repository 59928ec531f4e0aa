"""Test server: threaded_server that speaks sd_notify itself, as many services do.

It serves at once, then, HT_NOTIFY_DELAY seconds later (its own slow start: caches,
migrations), sends one datagram to $NOTIFY_SOCKET: READY=1, a STATUS= line naming
its generation, and lines huptime must never pass on (STOPPING=1, MAINPID=1).
"""

from __future__ import annotations

import os
import socket
import threading
import time

import common
from threaded_server import Handler, Server


def notify() -> None:
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        print("no NOTIFY_SOCKET", flush=True)
        return
    time.sleep(float(os.environ.get("HT_NOTIFY_DELAY", "0")))
    gen = os.environ.get("HUPTIME_GENERATION", "?")
    message = f"READY=1\nSTATUS=app generation {gen} warmed up\nSTOPPING=1\nMAINPID=1"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.sendto(message.encode(), "\0" + path[1:] if path.startswith("@") else path)
    print(f"notified {path}", flush=True)


def main() -> None:
    port = common.port_from_argv()
    server = Server(("127.0.0.1", port), Handler)
    threading.Thread(target=notify, daemon=True).start()
    common.announce(server.server_address[1])
    server.serve_forever()


if __name__ == "__main__":
    main()
