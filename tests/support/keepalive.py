"""HTTP/1.1 keep-alive connections a test holds open, and how each one ends.

    conns = open_idle(port, 1000)        # each made one request and read the reply
    ...restart...
    ends = watch_ends(conns, timeout=3.0)
    assert all(end.kind == "eof" for end in ends), summarize(ends)

Every read is bounded by a timeout; nothing here retries. A KeepAlive is a plain
blocking socket with a small parser for replies that carry Content-Length.
"""

from __future__ import annotations

import collections
import dataclasses
import resource
import selectors
import socket
import time
from collections.abc import Sequence

MAX_HEAD = 65536


class ReplyError(RuntimeError):
    """The connection ended, or sent something that is not a whole reply."""


@dataclasses.dataclass
class Reply:
    status: int
    head: bytes
    body: bytes
    at: float  # time.monotonic() when the last byte came

    @property
    def first_line(self) -> str:
        return self.body.split(b"\n", 1)[0].decode("utf-8", "replace")

    def word(self, key: str) -> str | None:
        """The value of `key=value` in the body's first line, e.g. word("gen")."""
        for item in self.first_line.split():
            name, eq, value = item.partition("=")
            if eq and name == key:
                return value
        return None

    @property
    def gen(self) -> int | None:
        value = self.word("gen")
        return int(value) if value is not None and value.isdigit() else None


@dataclasses.dataclass
class End:
    """How a held connection ended: kind "eof" (recv gave b""), "reset" (ECONNRESET or
    another socket error), "data" (bytes came where none were expected) or "open"
    (nothing happened before the deadline)."""
    kind: str
    at: float | None = None
    detail: str = ""


class KeepAlive:
    """One client connection to 127.0.0.1:port (or the Unix socket `unix`)."""

    def __init__(self, port: int = 0, *, unix: str | None = None, timeout: float = 5.0,
                 rcvbuf: int | None = None) -> None:
        family = socket.AF_UNIX if unix is not None else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            if rcvbuf is not None:  # before connect, so the window stays small
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            self.sock.settimeout(timeout)
            self.sock.connect(unix if unix is not None else ("127.0.0.1", port))
        except OSError:
            self.sock.close()
            raise
        self._buffer = b""
        self.last: Reply | None = None

    def fileno(self) -> int:
        return self.sock.fileno()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def request(self, path: str = "/", timeout: float = 5.0) -> Reply:
        """GET path on this connection (keep-alive) and read the whole reply."""
        self.send(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode("ascii"))
        return self.read_reply(timeout)

    def _fill(self, deadline: float, what: str) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"{what}: no more bytes in time (have {len(self._buffer)})")
        self.sock.settimeout(remaining)
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise ReplyError(f"{what}: end of file after {len(self._buffer)} bytes "
                             f"{self._buffer[:80]!r}")
        self._buffer += chunk

    def read_reply(self, timeout: float = 5.0) -> Reply:
        """Read one whole reply (head, then Content-Length bytes of body)."""
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self._buffer:
            if len(self._buffer) > MAX_HEAD:
                raise ReplyError(f"head longer than {MAX_HEAD} bytes")
            self._fill(deadline, "reply head")
        head, _, rest = self._buffer.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        parts = lines[0].split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
            raise ReplyError(f"bad status line {lines[0][:80]!r}")
        length = None
        for line in lines[1:]:
            name, colon, value = line.partition(b":")
            if colon and name.strip().lower() == b"content-length":
                length = int(value.strip())
        if length is None:
            raise ReplyError(f"no Content-Length in {head[:200]!r}")
        self._buffer = rest
        while len(self._buffer) < length:
            self._fill(deadline, f"body of {length} bytes")
        body, self._buffer = self._buffer[:length], self._buffer[length:]
        self.last = Reply(int(parts[1]), head, body, time.monotonic())
        return self.last

    def readable(self) -> bool:
        """Something (bytes, end of file or an error) is waiting to be read."""
        if self._buffer:
            return True
        with selectors.DefaultSelector() as selector:
            selector.register(self.sock, selectors.EVENT_READ)
            return bool(selector.select(0))

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> KeepAlive:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def open_idle(port: int, count: int, *, unix: str | None = None, path: str = "/",
              timeout: float = 5.0) -> list[KeepAlive]:
    """count connections, each having made one request and read its reply (in .last);
    they are then idle, held open by the client. On an error those opened are closed."""
    conns: list[KeepAlive] = []
    try:
        for _ in range(count):
            conn = KeepAlive(port, unix=unix, timeout=timeout)
            conns.append(conn)
            conn.request(path, timeout)
    except BaseException:
        close_all(conns)
        raise
    return conns


def close_all(conns: Sequence[KeepAlive]) -> None:
    for conn in conns:
        conn.close()


def watch_ends(conns: Sequence[KeepAlive], timeout: float) -> list[End]:
    """Wait, at most `timeout` seconds, until every connection has ended or received
    something; one End per connection, in order ("open" if nothing came in time).
    A connection that received data is not read further."""
    ends = [End("open") for _ in conns]
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        for index, conn in enumerate(conns):
            if conn._buffer:
                ends[index] = End("data", time.monotonic(), repr(conn._buffer[:80]))
            else:
                selector.register(conn.sock, selectors.EVENT_READ, index)
        left = len(selector.get_map())
        while left:
            remaining = deadline - time.monotonic()
            events = selector.select(max(0.0, remaining))  # timeout 0: one look
            if not events and remaining <= 0:
                break
            for key, _ in events:
                index = key.data
                now = time.monotonic()
                try:
                    conns[index].sock.setblocking(False)
                    chunk = conns[index].sock.recv(4096)
                    ends[index] = (End("eof", now) if not chunk
                                   else End("data", now, repr(chunk[:80])))
                except BlockingIOError:
                    continue
                except OSError as exc:
                    ends[index] = End("reset", now, f"{type(exc).__name__}: {exc}")
                selector.unregister(key.fileobj)
                left -= 1
    return ends


def summarize(ends: Sequence[End]) -> str:
    """Counts by kind, and a few details of anything but "eof"."""
    counts = collections.Counter(end.kind for end in ends)
    odd = [f"#{i} {end.kind} {end.detail}" for i, end in enumerate(ends)
           if end.kind != "eof"][:5]
    return f"{dict(counts)}" + (f"; e.g. {odd}" if odd else "")


def raise_nofile(need: int) -> bool:
    """Make RLIMIT_NOFILE's soft limit at least `need` (up to the hard limit); False if
    the hard limit is lower."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            return False
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
    return True
