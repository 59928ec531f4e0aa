"""Test server: a classic daemon. It forks; the parent exits at once (os._exit, as
daemon(3) does); the child calls setsid(), writes its pid to $HT_PIDFILE and serves
like the threaded server ($HT_BEHAVIOUR_FILE is obeyed in the child). With $HT_DAEMON_BIND_FIRST=1 it binds and listens before
it forks (the child inherits the listener); otherwise the child binds after setsid.
"""

from __future__ import annotations

import os
import sys

import common
from threaded_server import Handler, Server


def main() -> None:
    port = common.port_from_argv()
    bind_first = os.environ.get("HT_DAEMON_BIND_FIRST") == "1"
    server = Server(("127.0.0.1", port), Handler) if bind_first else None
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
    with open(os.environ["HT_PIDFILE"], "w") as f:
        f.write(f"{os.getpid()}\n")
    common.obey_behaviour_file()  # in the daemon: a broken version fails after the fork
    if server is None:
        server = Server(("127.0.0.1", port), Handler)
    common.announce(server.server_address[1])
    sys.stdout.flush()
    server.serve_forever()


if __name__ == "__main__":
    main()
