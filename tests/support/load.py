"""A bounded HTTP/1.0 load client that counts every kind of failure on its own.

Every request opens a new TCP connection, sends ``GET path HTTP/1.0``, reads to EOF
and checks the response, so a restart that drops, resets or truncates even one
connection shows up in the counters. Runs always end by themselves: after
``duration``, when ``stop`` is set, or after ``max_requests``; a hard deadline
abandons worker threads that are somehow still running.

    result = run_load(port, clients=8, duration=2.0)
    assert result.failed == 0, result.summary()
"""

from __future__ import annotations

import collections
import copy
import dataclasses
import socket
import threading
import time
from collections.abc import Callable
from typing import ClassVar

from .wait import wait_for

OnReply = Callable[[str, float, str], None]  # (kind, latency, detail) of one request

MAX_RESPONSE_BYTES = 1 << 20
MAX_ERROR_SAMPLES = 10
HARD_DEADLINE_MARGIN = 5.0


@dataclasses.dataclass
class LoadResult:
    """Counts of request outcomes; every request lands in exactly one counter."""

    FAILURES: ClassVar[tuple[str, ...]] = (
        "refused", "reset", "empty", "short", "timeout",
        "http_5xx", "http_other", "other_error",
    )

    ok: int = 0
    refused: int = 0      # ECONNREFUSED: nothing listening
    reset: int = 0        # ECONNRESET, EPIPE, ECONNABORTED
    empty: int = 0        # closed before sending a single byte
    short: int = 0        # headers truncated, or body shorter than Content-Length
    timeout: int = 0      # request not complete within the per-request timeout
    http_5xx: int = 0
    http_other: int = 0   # any status that is neither 2xx nor 5xx
    other_error: int = 0  # unparsable response, other socket errors
    error_samples: list[str] = dataclasses.field(default_factory=list)
    bodies_seen: collections.Counter[str] = dataclasses.field(
        default_factory=collections.Counter)  # first line of each OK body
    min_latency: float | None = None  # over OK requests only
    max_latency: float | None = None
    elapsed: float = 0.0
    abandoned: int = 0  # worker threads still running at the hard deadline

    @property
    def failed(self) -> int:
        return sum(getattr(self, kind) for kind in self.FAILURES)

    @property
    def total(self) -> int:
        return self.ok + self.failed

    @property
    def rate(self) -> float:
        """Requests per second, OK or not."""
        return self.total / self.elapsed if self.elapsed > 0 else 0.0

    def saw(self, token: str) -> bool:
        """True if some OK body's first line has `token` as a word, e.g. "pid=123"."""
        return any(token in line.split() for line in self.bodies_seen)

    def summary(self) -> str:
        failures = " ".join(f"{kind}={getattr(self, kind)}"
                            for kind in self.FAILURES if getattr(self, kind))
        parts = [f"ok={self.ok} failed={self.failed}",
                 failures,
                 f"in {self.elapsed:.2f}s ({self.rate:.0f}/s)",
                 f"bodies={dict(self.bodies_seen)}"]
        if self.abandoned:
            parts.append(f"ABANDONED {self.abandoned} threads")
        if self.error_samples:
            parts.append(f"samples={self.error_samples}")
        return " ".join(part for part in parts if part)


class _Tally:
    """The shared, lock-protected result of one run, and its request budget."""

    def __init__(self, max_requests: int) -> None:
        self._lock = threading.Lock()
        self._result = LoadResult()
        self._budget = max_requests

    def reserve(self) -> bool:
        """Take one request from the budget; False once it is spent."""
        with self._lock:
            if self._budget <= 0:
                return False
            self._budget -= 1
            return True

    def record(self, kind: str, latency: float, detail: str) -> None:
        with self._lock:
            result = self._result
            setattr(result, kind, getattr(result, kind) + 1)
            if kind == "ok":
                result.bodies_seen[detail] += 1
                if result.min_latency is None or latency < result.min_latency:
                    result.min_latency = latency
                if result.max_latency is None or latency > result.max_latency:
                    result.max_latency = latency
            elif len(result.error_samples) < MAX_ERROR_SAMPLES:
                result.error_samples.append(f"{kind}: {detail}")

    def snapshot(self) -> LoadResult:
        with self._lock:
            return copy.deepcopy(self._result)


def _read_to_eof(sock: socket.socket, deadline: float) -> bytes:
    chunks = []
    size = 0
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"response incomplete after {size} bytes")
        sock.settimeout(remaining)
        chunk = sock.recv(65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise ValueError(f"response larger than {MAX_RESPONSE_BYTES} bytes")


def _classify(data: bytes) -> tuple[str, str]:
    """Return (kind, detail) for a complete response; detail is the body's first line if OK."""
    if not data:
        return "empty", "connection closed with no bytes"
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return "short", f"headers truncated after {len(data)} bytes"
    lines = head.split(b"\r\n")
    status = lines[0].split(None, 2)
    if (len(status) < 2 or not status[0].startswith(b"HTTP/")
            or len(status[1]) != 3 or not status[1].isdigit()):
        return "other_error", f"bad status line {lines[0][:80]!r}"
    code = int(status[1])
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if colon and name.strip().lower() == b"content-length":
            try:
                length = int(value.strip())
            except ValueError:
                return "other_error", f"bad Content-Length {value.strip()[:40]!r}"
            if len(body) < length:
                return "short", f"body {len(body)} of {length} bytes"
            if len(body) > length:
                return "other_error", f"body {len(body)} bytes, Content-Length {length}"
            break
    if 500 <= code <= 599:
        return "http_5xx", f"status {code}"
    if not 200 <= code <= 299:
        return "http_other", f"status {code}"
    return "ok", body.split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8", "replace")


def _request(family: int, address: tuple, payload: bytes,
             timeout: float) -> tuple[str, float, str]:
    """One request on a new connection: (kind, latency, detail), never raises OSError."""
    start = time.monotonic()
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(address)
        sock.sendall(payload)
        kind, detail = _classify(_read_to_eof(sock, start + timeout))
    except TimeoutError as exc:  # socket.timeout is TimeoutError since 3.10
        kind, detail = "timeout", str(exc) or "timed out"
    except ConnectionRefusedError as exc:
        kind, detail = "refused", str(exc)
    except (ConnectionResetError, BrokenPipeError, ConnectionAbortedError) as exc:
        kind, detail = "reset", str(exc)
    except (OSError, ValueError) as exc:
        kind, detail = "other_error", f"{type(exc).__name__}: {exc}"
    finally:
        sock.close()
    return kind, time.monotonic() - start, detail


class _Load:
    """One load run: its settings, its worker threads and its live tally."""

    def __init__(self, port: int, *, host: str = "127.0.0.1", path: str = "/",
                 clients: int = 8, duration: float = 5.0, max_requests: int = 200_000,
                 timeout: float = 5.0, stop: threading.Event | None = None,
                 unix: str | None = None, on_reply: OnReply | None = None) -> None:
        if clients < 1 or duration <= 0 or timeout <= 0 or max_requests < 0:
            raise ValueError("need clients >= 1, duration > 0, timeout > 0, max_requests >= 0")
        if unix is not None:  # a socket path, or "@name" for an abstract socket
            family, address = socket.AF_UNIX, "\0" + unix[1:] if unix.startswith("@") else unix
        else:
            family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        self._family = family
        self._address = address
        self._payload = f"GET {path} HTTP/1.0\r\nHost: x\r\n\r\n".encode("ascii")
        self._clients = clients
        self._duration = duration
        self._timeout = timeout
        self._stop = stop if stop is not None else threading.Event()
        self._tally = _Tally(max_requests)
        self._on_reply = on_reply
        self._started = time.monotonic()
        self.longest_run = duration + timeout + HARD_DEADLINE_MARGIN


    def run(self) -> LoadResult:
        self._started = time.monotonic()
        end = self._started + self._duration
        hard_deadline = self._started + self.longest_run
        workers = [threading.Thread(target=self._work, args=(end,), daemon=True,
                                    name=f"load-client-{i}")
                   for i in range(self._clients)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(max(0.0, hard_deadline - time.monotonic()))
        result = self.snapshot()
        result.abandoned = sum(worker.is_alive() for worker in workers)
        return result

    def snapshot(self) -> LoadResult:
        result = self._tally.snapshot()
        result.elapsed = time.monotonic() - self._started
        return result

    def _work(self, end: float) -> None:
        while (not self._stop.is_set() and time.monotonic() < end
               and self._tally.reserve()):
            kind, latency, detail = _request(self._family, self._address,
                                             self._payload, self._timeout)
            self._tally.record(kind, latency, detail)
            if self._on_reply is not None:
                self._on_reply(kind, latency, detail)


def run_load(port: int, *, host: str = "127.0.0.1", path: str = "/", clients: int = 8,
             duration: float = 5.0, max_requests: int = 200_000, timeout: float = 5.0,
             stop: threading.Event | None = None, unix: str | None = None,
             on_reply: OnReply | None = None) -> LoadResult:
    """Load host:port (or the Unix socket `unix`) with `clients` threads until duration,
    stop or max_requests; block. on_reply(kind, latency, detail) is called in the worker
    thread after each request is counted (detail: the body's first line if kind is "ok")."""
    return _Load(port, host=host, path=path, clients=clients, duration=duration,
                 max_requests=max_requests, timeout=timeout, stop=stop, unix=unix,
                 on_reply=on_reply).run()


class LoadRunner:
    """Load running in the background while a test restarts the server.

        with LoadRunner(port, duration=30.0) as load:
            load.wait_until(lambda r: r.ok >= 50)
            ...restart...
        assert load.result.failed == 0, load.result.summary()

    `duration` is only an upper bound; stop() (or leaving the block) ends the run.
    Other keyword arguments are those of run_load.
    """

    def __init__(self, port: int, *, duration: float = 60.0, **options) -> None:
        self._stop = threading.Event()
        self._load = _Load(port, duration=duration, stop=self._stop, **options)
        self._thread: threading.Thread | None = None
        self._result: LoadResult | None = None

    def start(self) -> LoadRunner:
        """Start the load; call once."""
        if self._thread is not None:
            raise RuntimeError("LoadRunner already started")
        self._thread = threading.Thread(target=self._run, daemon=True, name="load-runner")
        self._thread.start()
        return self

    def _run(self) -> None:
        self._result = self._load.run()

    def snapshot(self) -> LoadResult:
        """Counts so far, while the load is running or after."""
        return self._result if self._result is not None else self._load.snapshot()

    def wait_until(self, predicate: Callable[[LoadResult], bool],
                   timeout: float = 10.0) -> LoadResult:
        """Poll snapshots until predicate(snapshot) holds and return that snapshot;
        TimeoutError after `timeout`."""
        def met() -> LoadResult | None:
            snapshot = self.snapshot()
            return snapshot if predicate(snapshot) else None

        return wait_for(met, timeout, "load condition met", every=0.01,
                        detail=lambda: self.snapshot().summary())

    def stop(self) -> LoadResult:
        """Stop the load, wait for in-flight requests, and return the final result."""
        if self._thread is None:
            raise RuntimeError("LoadRunner not started")
        self._stop.set()
        self._thread.join(self._load.longest_run + HARD_DEADLINE_MARGIN)
        if self._result is None:
            raise RuntimeError("load runner thread did not finish")
        return self._result

    @property
    def result(self) -> LoadResult:
        """The final result; only after stop()."""
        if self._result is None:
            raise RuntimeError("load still running: call stop() first")
        return self._result

    def __enter__(self) -> LoadRunner:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
