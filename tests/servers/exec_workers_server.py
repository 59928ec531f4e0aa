"""Test server: a parent that binds and starts its workers by fork+exec.

The parent listens, then runs two workers through subprocess (fork + exec of a new
Python), passing them the listening descriptor; each worker accepts on it (the
threaded server's handler), the parent only waits. Such workers are programs of their
own: a preload's state does not follow them across exec. SIGTERM to the parent ends
the workers too.

    python exec_workers_server.py PORT
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys

import common
from threaded_server import Handler, Server

WORKERS = 2


def worker(fd: int) -> None:
    server = Server(("127.0.0.1", 0), Handler, bind_and_activate=False)
    server.socket.close()
    server.socket = socket.socket(fileno=fd)
    server.serve_forever()


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        worker(int(sys.argv[2]))
        return
    port = common.port_from_argv()
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(common.BACKLOG)
    fd = listener.fileno()
    workers = [subprocess.Popen([sys.executable, __file__, "--worker", str(fd)], pass_fds=(fd,))
               for _ in range(WORKERS)]

    def stop(signum, frame) -> None:
        for w in workers:
            w.terminate()
        for w in workers:
            w.wait()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    common.announce(listener.getsockname()[1])
    while True:
        signal.pause()


if __name__ == "__main__":
    main()
