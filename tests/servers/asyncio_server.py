"""Test server: asyncio.start_server, one coroutine per connection."""

from __future__ import annotations

import asyncio

import common


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10.0)
        delay, status, body = common.route(head)
        await asyncio.sleep(delay)
        writer.write(common.render(status, body))
        await writer.drain()
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
            asyncio.TimeoutError):
        pass  # the client went away or sent garbage; nothing to answer
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass


async def serve(port: int) -> None:
    server = await asyncio.start_server(handle, "127.0.0.1", port, reuse_address=True,
                                        backlog=common.BACKLOG, limit=common.HEAD_LIMIT)
    common.announce(server.sockets[0].getsockname()[1])
    async with server:
        await server.serve_forever()


def main() -> None:
    port = common.port_from_argv()
    common.obey_behaviour_file()
    asyncio.run(serve(port))


if __name__ == "__main__":
    main()
