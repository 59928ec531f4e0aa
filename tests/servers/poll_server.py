"""Test server: one thread, a poll() loop on a non-blocking listener, each connection
answered in turn (as small event loops without epoll do). With $HT_SELECT=1 it waits
in select() instead, with no timeout: the shim sees that wait but cannot add to it."""

from __future__ import annotations

import os
import select

import common


def main() -> None:
    port = common.port_from_argv()
    common.obey_behaviour_file()
    sock = common.bound_socket(port)
    sock.listen(common.BACKLOG)
    sock.setblocking(False)
    common.announce(sock.getsockname()[1])
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    if os.environ.get("HT_SELECT") == "1":
        def wait() -> list:
            return select.select([sock], [], [])[0]
    else:
        def wait() -> list:
            return poller.poll(1000)
    while True:
        for _ in wait():
            try:
                conn, _ = sock.accept()
            except (BlockingIOError, ConnectionAbortedError):
                continue  # another process of the pool took it
            common.answer(conn, slow=False)  # one client at a time: /slow is not slow here


if __name__ == "__main__":
    main()
