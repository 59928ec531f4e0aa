"""Test server: a blocking accept() loop with one daemon thread per connection.

With $HT_EXIT_AFTER set it stops accepting after that many seconds, finishes the
requests it accepted and exits with status $HT_EXIT_STATUS (default 0): a program
that keeps ending on its own, for --revive. With $HT_LISTEN_IF_NEEDED=1 it calls
listen() only if the bound socket does not listen already (SO_ACCEPTCONN), as
programs that support inherited sockets do. With $HT_DEVNULL_STDIO=1 it points
descriptors 0-2 at /dev/null once it listens, as daemons do.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time

import common


def main() -> None:
    port = common.port_from_argv()
    common.obey_behaviour_file()
    sock = common.bound_socket(port)
    if not (os.environ.get("HT_LISTEN_IF_NEEDED") == "1" and
            sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)):
        sock.listen(common.BACKLOG)
    common.announce(sock.getsockname()[1])
    if os.environ.get("HT_DEVNULL_STDIO") == "1":
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.close(null)
    exit_after = float(os.environ.get("HT_EXIT_AFTER", "0"))
    if exit_after:
        sock.settimeout(0.05)
    end = time.monotonic() + exit_after
    handlers = []
    while not exit_after or time.monotonic() < end:
        try:
            conn, _ = sock.accept()
        except (ConnectionAbortedError, TimeoutError):
            continue
        conn.settimeout(None)
        handler = threading.Thread(target=common.answer, args=(conn,), daemon=True)
        handler.start()
        handlers = [h for h in handlers if h.is_alive()] + [handler]
    for handler in handlers:
        handler.join()
    status = int(os.environ.get("HT_EXIT_STATUS", "0"))
    print(f"exiting with status {status}", flush=True)
    sys.exit(status)


if __name__ == "__main__":
    main()
