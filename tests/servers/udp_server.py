"""Test server: UDP echo. Each datagram is answered with "<datagram> pid=P gen=N".

    python udp_server.py PORT            # asyncio (epoll) datagram endpoint
    python udp_server.py PORT blocking   # a plain blocking recvfrom() loop
"""

from __future__ import annotations

import asyncio
import socket
import sys

import common


def reply(data: bytes) -> bytes:
    return data + b" " + common.identity().strip()


class Echo(asyncio.DatagramProtocol):
    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        self.transport.sendto(reply(data), addr)


async def serve_asyncio(port: int) -> None:
    loop = asyncio.get_running_loop()
    await loop.create_datagram_endpoint(Echo, local_addr=("127.0.0.1", port))
    print(f"listening on {port} (udp)", flush=True)
    await asyncio.Event().wait()


def serve_blocking(port: int) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", port))
    print(f"listening on {port} (udp, blocking)", flush=True)
    while True:
        data, addr = sock.recvfrom(2048)
        sock.sendto(reply(data), addr)


def main() -> None:
    port = int(sys.argv[1])
    if sys.argv[2:] == ["blocking"]:
        serve_blocking(port)
    else:
        asyncio.run(serve_asyncio(port))


if __name__ == "__main__":
    main()
