"""Test server: a blocking accept() loop with one daemon thread per connection."""

from __future__ import annotations

import socket
import threading
import time

import common


def handle(conn: socket.socket) -> None:
    with conn:
        conn.settimeout(10.0)
        head = b""
        try:
            while b"\r\n\r\n" not in head and len(head) < common.HEAD_LIMIT:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                head += chunk
            delay, status, body = common.route(head)
            time.sleep(delay)
            conn.sendall(common.render(status, body))
        except OSError:
            pass  # the client went away; nothing to answer


def main() -> None:
    port = common.port_from_argv()
    common.obey_behaviour_file()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(common.BACKLOG)
    common.announce(sock.getsockname()[1])
    while True:
        try:
            conn, _ = sock.accept()
        except ConnectionAbortedError:
            continue
        threading.Thread(target=handle, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    main()
