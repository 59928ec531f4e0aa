"""Test server: the threaded server, but it starts other programs the ways Python can.

At start it runs a helper program through subprocess (vfork/fork + exec) and through
os.posix_spawn; the helper listens on a socket of its own and prints what a shim
would have changed in it ("helper via KIND: listener nonblocking=B hup caught=B").
For every request it runs /bin/true both ways before it answers.
"""

from __future__ import annotations

import os
import subprocess
import sys

import common
from threaded_server import Handler, Server

HELPER = r"""
import os, signal, socket, sys
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen()
with open(f"/proc/self/fdinfo/{s.fileno()}") as f:
    flags = int(next(l for l in f if l.startswith("flags:")).split()[1], 8)
with open("/proc/self/status") as f:
    caught = int(next(l for l in f if l.startswith("SigCgt:")).split()[1], 16)
hup = bool(caught >> (signal.SIGHUP - 1) & 1)
print(f"helper via {sys.argv[1]}: listener nonblocking={bool(flags & os.O_NONBLOCK)} "
      f"hup caught={hup}", flush=True)
"""


def run_both_ways(argv: list[str]) -> None:
    subprocess.run(argv, check=True)
    pid = os.posix_spawn(argv[0], argv, os.environ)
    _, status = os.waitpid(pid, 0)
    if status != 0:
        raise RuntimeError(f"{argv} through posix_spawn: status {status}")


class SpawningHandler(Handler):
    def do_GET(self) -> None:
        run_both_ways(["/bin/true"])
        super().do_GET()


def main() -> None:
    port = common.port_from_argv()
    for kind in ("subprocess", "posix_spawn"):
        argv = [sys.executable, "-c", HELPER, kind]
        if kind == "subprocess":
            subprocess.run(argv, check=True)
        else:
            os.waitpid(os.posix_spawn(sys.executable, argv, os.environ), 0)
    server = Server(("127.0.0.1", port), SpawningHandler)
    common.announce(server.server_address[1])
    server.serve_forever()


if __name__ == "__main__":
    main()
