"""Prove the load client and the test servers without huptime.

The client must count OK requests against every test server, classify each failure
class exactly, stay bounded, and — the negative control — report errors when a plain
server is killed and restarted under load.
"""

from __future__ import annotations

import os
import socket
import struct
import threading

import pytest

from support.build import free_port
from support.load import LoadRunner, run_load
from support.process import WatchedProcess
from support.servers import (ALL_SERVERS, SERIAL_SERVERS, SLOW_SECONDS, listening_line,
                             server_command)

START_TIMEOUT = 10.0


@pytest.fixture
def start_server(build_dir):
    """start_server(name, port, env=None, ready=True): a WatchedProcess, killed at teardown."""
    started: list[WatchedProcess] = []

    def start(name: str, port: int, env: dict[str, str] | None = None,
              ready: bool = True) -> WatchedProcess:
        process = WatchedProcess(server_command(name, port, build_dir),
                                 env={**os.environ, **(env or {})})
        started.append(process)
        if ready:
            process.wait_for_line(listening_line(port), START_TIMEOUT)
        return process

    yield start
    for process in started:
        process.kill()


@pytest.mark.parametrize("name", ALL_SERVERS)
def test_every_request_succeeds_against_a_healthy_server(start_server, name):
    port = free_port()
    server = start_server(name, port)
    result = run_load(port, clients=8, duration=1.0)
    assert result.ok > 0 and result.failed == 0, result.summary()
    assert result.saw(f"pid={server.pid}"), result.summary()
    assert result.abandoned == 0


@pytest.mark.parametrize("name", [n for n in ALL_SERVERS if n not in SERIAL_SERVERS])
def test_slow_requests_are_all_answered_after_the_delay(start_server, name):
    port = free_port()
    start_server(name, port)
    result = run_load(port, path="/slow", clients=8, duration=1.5)
    assert result.ok >= 8 and result.failed == 0, result.summary()
    assert result.min_latency >= SLOW_SECONDS, result.summary()
    assert result.max_latency < 5 * SLOW_SECONDS, result.summary()


@pytest.mark.parametrize(("name", "path"), [("blocking", "/"), ("c-accept4", "/slow")])
def test_negative_control_kill_and_restart_is_detected(start_server, name, path):
    port = free_port()
    first = start_server(name, port)
    with LoadRunner(port, path=path, clients=8, duration=20.0, timeout=2.0) as load:
        load.wait_until(lambda r: r.ok >= 16)
        first.kill()
        load.wait_until(lambda r: r.refused > 0)
        second = start_server(name, port)
        load.wait_until(lambda r: r.saw(f"pid={second.pid}") and r.ok >= 32)
    result = load.result
    assert result.saw(f"pid={first.pid}") and result.saw(f"pid={second.pid}"), \
        result.summary()
    assert result.refused > 0, result.summary()
    if path == "/slow":  # SIGKILL with requests in flight: they end without a reply
        assert result.empty + result.reset > 0, result.summary()
    assert result.timeout == result.short == result.other_error == 0, result.summary()


@pytest.mark.parametrize("name", ALL_SERVERS)
def test_behaviour_file_crash_exits_3_before_listening(start_server, tmp_path, name):
    behaviour = tmp_path / "behaviour"
    behaviour.write_text("crash\n")
    server = start_server(name, free_port(), env={"HT_BEHAVIOUR_FILE": str(behaviour)},
                          ready=False)
    assert server.wait(START_TIMEOUT) == 3
    server.kill()  # no-op on an exited process, but waits for its last output
    assert server.output().splitlines() == ["crashing"]


@pytest.mark.parametrize("name", [n for n in ALL_SERVERS if not n.startswith("c-")])
def test_behaviour_file_error500_serves_nothing_but_500s(start_server, tmp_path, name):
    behaviour = tmp_path / "behaviour"
    behaviour.write_text("error500\n")
    port = free_port()
    start_server(name, port, env={"HT_BEHAVIOUR_FILE": str(behaviour)})
    result = run_load(port, clients=2, duration=0.3)
    assert result.http_5xx > 0 and result.http_5xx == result.failed and result.ok == 0, \
        result.summary()


@pytest.mark.parametrize("name", ALL_SERVERS)
def test_behaviour_file_hang_never_listens(start_server, tmp_path, name):
    behaviour = tmp_path / "behaviour"
    behaviour.write_text("hang\n")
    port = free_port()
    server = start_server(name, port, env={"HT_BEHAVIOUR_FILE": str(behaviour)},
                          ready=False)
    with pytest.raises(TimeoutError):
        server.wait_for_line(listening_line(port), timeout=1.0)
    assert server.popen.poll() is None
    assert run_load(port, clients=1, duration=0.2).refused > 0


class MisbehavingServer:
    """An in-process server that answers every request in one broken way."""

    REPLIES = {
        "short": b"HTTP/1.0 200 OK\r\nContent-Length: 10\r\n\r\nabc",
        "truncated_headers": b"HTTP/1.0 200 OK\r\nContent-Le",
        "http_5xx": b"HTTP/1.0 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n",
        "http_other": b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n",
        "garbage": b"hello there\r\n\r\n",
        "long_body": b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nabc",
        "ok": b"HTTP/1.0 200 OK\r\nContent-Length: 6\r\n\r\nfine\r\n",
        "empty": b"",
    }

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.listener.settimeout(0.05)
        self.port = self.listener.getsockname()[1]
        self.held: list[socket.socket] = []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.done.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            try:
                self._answer(conn)
            except OSError:
                conn.close()

    def _answer(self, conn: socket.socket) -> None:
        conn.settimeout(2.0)
        conn.recv(4096)
        if self.mode == "silent":
            self.held.append(conn)
            return
        if self.mode == "reset":  # linger 0: close() sends RST
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        else:
            conn.sendall(self.REPLIES[self.mode])
        conn.close()

    def close(self) -> None:
        self.done.set()
        self.thread.join(5.0)
        for conn in self.held:
            conn.close()
        self.listener.close()


@pytest.mark.parametrize(("mode", "counter"), [
    ("ok", "ok"),
    ("short", "short"),
    ("truncated_headers", "short"),
    ("empty", "empty"),
    ("reset", "reset"),
    ("silent", "timeout"),
    ("http_5xx", "http_5xx"),
    ("http_other", "http_other"),
    ("garbage", "other_error"),
    ("long_body", "other_error"),
])
def test_each_failure_class_lands_in_its_own_counter(mode, counter):
    server = MisbehavingServer(mode)
    try:
        result = run_load(server.port, clients=2, max_requests=6, duration=5.0,
                          timeout=0.3)
    finally:
        server.close()
    assert result.total == 6 and getattr(result, counter) == 6, result.summary()
    assert (result.failed == 0) == (counter == "ok")


def test_refused_when_nothing_listens_and_max_requests_bounds_the_run():
    result = run_load(free_port(), clients=4, max_requests=50, duration=10.0)
    assert result.refused == result.total == 50, result.summary()
    assert result.elapsed < 2.0
    assert "refused=50" in result.summary()


def test_load_runner_stops_on_request_and_snapshots_while_running():
    with LoadRunner(free_port(), clients=2, duration=30.0) as load:
        snapshot = load.wait_until(lambda r: r.refused >= 10, timeout=5.0)
        assert snapshot.elapsed < 5.0
    result = load.result
    assert result.refused >= snapshot.refused and result.elapsed < 5.0
    assert load.snapshot() is result
