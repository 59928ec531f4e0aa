"""Test server: one asyncio program listening on every address named on its command line.

    python listeners_server.py [--close-fds] tcp:127.0.0.1:8000 tcp:[::1]:8000 unix:/run/x.sock unix:@name

--close-fds first closes every descriptor above stderr (close_range), as daemons do.
A Unix path is bound the way most programs do it (asyncio's start_unix_server):
remove the socket file if one exists, then bind. `unix:@name` is an abstract socket.
Prints "listening on N addresses" once all are listening.
"""

from __future__ import annotations

import asyncio
import os
import sys

import common
from asyncio_server import handle


async def listen(spec: str) -> asyncio.Server:
    kind, _, where = spec.partition(":")
    if kind == "tcp":
        host, _, port = where.rpartition(":")
        return await asyncio.start_server(handle, host.strip("[]"), int(port), reuse_address=True,
                                          backlog=common.BACKLOG, limit=common.HEAD_LIMIT)
    if kind == "unix":
        path = "\0" + where[1:] if where.startswith("@") else where
        return await asyncio.start_unix_server(handle, path, backlog=common.BACKLOG,
                                               limit=common.HEAD_LIMIT)
    sys.exit(f"unknown address {spec!r}")


async def serve(specs: list[str]) -> None:
    servers = [await listen(spec) for spec in specs]
    print(f"listening on {len(servers)} addresses", flush=True)
    await asyncio.gather(*(server.serve_forever() for server in servers))


def main() -> None:
    specs = sys.argv[1:]
    if specs[:1] == ["--close-fds"]:
        specs = specs[1:]
        os.closerange(3, os.sysconf("SC_OPEN_MAX"))  # libc's close_range
    if not specs:
        sys.exit(f"usage: {sys.argv[0]} [--close-fds] ADDRESS...")
    common.obey_behaviour_file()
    asyncio.run(serve(specs))


if __name__ == "__main__":
    main()
