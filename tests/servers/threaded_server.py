"""Test server: socketserver.ThreadingMixIn + http.server, as many Python apps are built."""

from __future__ import annotations

import http.server
import socketserver
import time

import common


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = common.BACKLOG


class Handler(http.server.BaseHTTPRequestHandler):
    timeout = 10.0

    def do_GET(self) -> None:
        delay, status, body = common.route(self.requestline.encode("latin-1"))
        time.sleep(delay)
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:
        pass  # one line per request would swamp the test logs


def main() -> None:
    port = common.port_from_argv()
    common.claim_pid_file()
    common.obey_behaviour_file()
    common.start_helper_child()
    server = Server(("127.0.0.1", port), Handler)
    common.announce(server.server_address[1])
    server.serve_forever()


if __name__ == "__main__":
    main()
