"""Test server: one thread, a poll() loop on a non-blocking listener, each connection
answered in turn (as small event loops without epoll do)."""

from __future__ import annotations

import select
import socket

import common


def main() -> None:
    port = common.port_from_argv()
    common.obey_behaviour_file()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(common.BACKLOG)
    sock.setblocking(False)
    common.announce(sock.getsockname()[1])
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    while True:
        for _ in poller.poll(1000):
            try:
                conn, _ = sock.accept()
            except (BlockingIOError, ConnectionAbortedError):
                continue  # another process of the pool took it
            common.answer(conn, slow=False)  # one client at a time: /slow is not slow here


if __name__ == "__main__":
    main()
