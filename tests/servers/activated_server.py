"""Test server: socket activation in Python, as gunicorn or `uvicorn --fd 3` take it.

Takes its listener from fd 3 when LISTEN_PID is its own PID (LISTEN_FDS), and waits
for clients in poll() (http.server's serve_forever), which only /proc/PID/mem shows.
SIGTERM: stops accepting, finishes the requests it took, exits 0.
"""

from __future__ import annotations

import http.server
import os
import signal
import socket
import socketserver
import sys
import threading

from threaded_server import Handler


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = False  # server_close() waits for the requests it took
    block_on_close = True


def main() -> None:
    if os.environ.get("LISTEN_PID") != str(os.getpid()) or os.environ.get("LISTEN_FDS") != "1":
        sys.exit("activated_server: expects one socket passed at fd 3 (LISTEN_FDS=1)")
    server = Server(("127.0.0.1", 0), Handler, bind_and_activate=False)
    server.socket.close()
    server.socket = socket.socket(fileno=3)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    threading.Thread(target=lambda: (stop.wait(), server.shutdown()), daemon=True).start()
    print(f"listening on {server.socket.getsockname()}", flush=True)
    server.serve_forever()
    server.server_close()


if __name__ == "__main__":
    main()
