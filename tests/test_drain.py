"""An old generation is drained when the kernel says so, and idle keep-alive
connections do not hold it (--drain-idle).

- Servers that end connections behind libc's back (a fork-per-connection server whose
  children _exit() without close(); a server that closes with syscall(SYS_close)):
  every old generation, leader and all its processes, is gone within EXIT_WITHIN
  seconds of each restart, far below --drain-timeout; over TCP and a Unix socket.
- A keep-alive server holding N_IDLE idle connections: with --drain-idle 1 the old
  generation closes every idle one cleanly (the client reads end of file, never a
  reset) within IDLE + 2 s, while connections in the middle of a request (a slow
  reply, a half-sent request, a reply the client has not read yet, a client that has
  not spoken) get their whole reply from the old generation; then it exits.
  --drain-idle 0: idle connections stay served by the old generation until the client
  closes them. Exec mode: a restart with idle connections is over in seconds.

Timings are measured from Served.restart()'s return (the new generation serves; the
old one stops accepting at that moment).
"""

from __future__ import annotations

import threading
import time

import pytest

from support.keepalive import (KeepAlive, Reply, ReplyError, close_all, open_idle, raise_nofile,
                               summarize, watch_ends)
from support.load import LoadRunner
from support.proc import descendants, is_alive, live_descendants
from support.servers import server_command
from support.wait import wait_for

DRAIN_TIMEOUT = 60     # --drain-timeout: every bound below is far under it
EXIT_WITHIN = 5.0      # s after a restart: the old generation, all its processes, is gone
RESTARTS = 5
CLIENTS = 8
START_TIMEOUT = 15.0   # generation 1 serving (an unknown option fails at start)
IDLE = 1               # --drain-idle
IDLE_CUT_WITHIN = IDLE + 2.0  # s after a restart: every idle connection has ended
N_IDLE = 1000          # idle keep-alive connections held through a fork-mode restart
N_IDLE_EXEC = 300      # ... through an exec-mode restart
SLOW_MS = 3000         # a reply the old generation owes past the idle cut
BIG = 4_000_000        # a reply the client reads only after the idle cut
EXEC_RESTART_WITHIN = 5.0
PAUSE = 0.1            # s a client waits after a reply before it speaks again


@pytest.fixture
def nofile():
    """Enough descriptors for this process's held connections (skip if the hard limit
    is too low)."""
    if not raise_nofile(N_IDLE + 256):
        pytest.skip(f"RLIMIT_NOFILE hard limit below {N_IDLE + 256}")


def current_tree(served) -> set[int]:
    """The current generation's processes: its leader and everything below it."""
    return {served.leader, *descendants(served.leader)}


def lingering(served) -> list[int]:
    """Live processes of the server that are not the current generation's. The test
    is a child subreaper, so an old generation's orphans stay its descendants."""
    current = current_tree(served)
    return sorted(pid for pid in live_descendants() if pid not in current)


def wait_old_generation_gone(served, old_leader: int, within: float = EXIT_WITHIN) -> None:
    """The old leader and every other process not of the current generation exit within
    `within` seconds (the drain timeout is DRAIN_TIMEOUT)."""
    def gone() -> bool:
        served.reap()
        return not is_alive(old_leader) and not lingering(served)

    wait_for(gone, within,
             f"exit of generation {served.generation - 1} (leader {old_leader}; "
             f"--drain-timeout {DRAIN_TIMEOUT})",
             every=0.05,
             detail=lambda: (f"old leader alive={is_alive(old_leader)}, lingering "
                             f"{lingering(served)}; log tail:\n{served.logfile.tail()}"))


class PeakProcesses:
    """Samples the number of live processes the test started, in a thread."""

    def __init__(self, every: float = 0.1) -> None:
        self.every = every
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="peak-processes")

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.peak = max(self.peak, len(live_descendants()))

    def __enter__(self) -> PeakProcesses:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join(5.0)


# ---- connections closed behind libc's back: the kernel's view decides --------------

@pytest.mark.parametrize("family", ["tcp", "unix"])
@pytest.mark.parametrize("name", ["c-fork", "c-rawclose"])
def test_old_generation_exits_once_the_kernel_says_it_holds_no_connection(
        under_huptime, build_dir, port, short_dir, name, family):
    """c-fork: children _exit() without close(); c-rawclose: syscall(SYS_close). Under
    CLIENTS clients, each of RESTARTS restarts retires the old generation within
    EXIT_WITHIN s (not --drain-timeout), nothing fails, and the server's processes stay
    bounded (two generations' worth at most)."""
    unix = str(short_dir / "s.sock") if family == "unix" else None
    served = under_huptime(f"{name}-{family}", server_command(name, port, build_dir, unix=unix),
                           options=["--drain-timeout", str(DRAIN_TIMEOUT)]).start(START_TIMEOUT)
    # per generation: a leader, and for c-fork a child per client at most
    bound = 2 * (1 + CLIENTS) + 4
    with PeakProcesses() as processes, \
            LoadRunner(port, unix=unix, clients=CLIENTS, duration=120.0) as load:
        load.wait_until(lambda r: r.ok >= 50)
        for _ in range(RESTARTS):
            old = served.leader
            before = load.snapshot().ok
            served.restart()
            wait_old_generation_gone(served, old)
            load.wait_until(lambda r, g=served.generation, b=before:
                            r.saw(f"gen={g}") and r.ok >= b + 20)
    result = load.result
    assert result.failed == 0, result.summary()
    assert served.generation == RESTARTS + 1
    assert processes.peak <= bound, f"{processes.peak} live processes, at most {bound} expected"
    assert "drain timeout" not in served.log(), served.log()
    served.stop()


# ---- keep-alive: --drain-idle --------------------------------------------------------

def start_keepalive(under_huptime, build_dir, port, label: str, options: list[str],
                    exec_mode: bool = False):
    command = server_command("c-keepalive", port, build_dir)
    return under_huptime(label, command, options=options,
                         exec_mode=exec_mode).start(START_TIMEOUT)


def gens(conns: list[KeepAlive]) -> set[int | None]:
    return {conn.last.gen for conn in conns}


def read_reply(label: str, conn: KeepAlive, timeout: float) -> Reply:
    try:
        return conn.read_reply(timeout)
    except (ReplyError, OSError) as exc:
        raise AssertionError(f"{label}: no whole reply: {type(exc).__name__}: {exc}") from exc


def test_idle_connections_are_closed_cleanly_and_busy_ones_finish(
        under_huptime, build_dir, port, nofile):
    """--drain-idle 1, fork mode, N_IDLE idle keep-alive connections: after the restart
    each reads a clean end of file within IDLE_CUT_WITHIN s, and a new connection is
    served by generation 2. Five busy connections are not cut though they outlive
    the idle cut: a reply due SLOW_MS after the request, half a request after a
    reply, half a request on a fresh connection, a connection that never spoke (the
    server has not answered), a BIG reply the client reads late. Each gets its whole
    reply from generation 1, is then idle and cut cleanly in turn, and generation 1
    exits within EXIT_WITHIN s."""
    served = start_keepalive(under_huptime, build_dir, port, "keepalive-idle",
                             ["--drain-idle", str(IDLE), "--drain-timeout", str(DRAIN_TIMEOUT)])
    idle = open_idle(port, N_IDLE)
    busy: dict[str, KeepAlive] = {}
    try:
        assert gens(idle) == {1}
        # Connections the old generation must not cut: it owes them a reply, or the
        # client has not finished speaking, or has not read what it was sent.
        busy["slow"] = KeepAlive(port)
        busy["slow"].request("/")
        busy["half, after a reply"] = KeepAlive(port)
        busy["half, after a reply"].request("/")
        busy["half, fresh"] = KeepAlive(port)
        busy["silent"] = KeepAlive(port)  # connected, never spoke
        busy["big, unread"] = KeepAlive(port, rcvbuf=65536)
        busy["big, unread"].request("/")
        # The clients pause before they speak again: tcp_info's last_data_* clocks tick
        # in jiffies (1-10 ms), so within one tick nobody can tell who spoke last.
        time.sleep(PAUSE)
        busy["half, after a reply"].send(b"GET / HTTP/1.1\r\nHost: x\r\n")
        busy["half, fresh"].send(b"GET / HTT")
        busy["big, unread"].send(f"GET /big/{BIG} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        busy["slow"].send(f"GET /sleep/{SLOW_MS} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        slow_sent = time.monotonic()
        time.sleep(0.2)  # the old generation has accepted and read them all
        early = [i for i, conn in enumerate(idle) if conn.readable()]
        assert not early, f"idle connections {early[:5]} ended before any restart"

        old = served.leader
        served.restart()
        t0 = served.serving_at
        with KeepAlive(port) as fresh:
            assert fresh.request("/").gen == 2, "a new connection goes to the new generation"

        # every idle connection: a clean end of file, soon
        ends = watch_ends(idle, max(0.0, t0 + IDLE_CUT_WITHIN - time.monotonic()))
        assert all(end.kind == "eof" for end in ends), \
            f"idle connections {IDLE_CUT_WITHIN} s after the restart: {summarize(ends)}"

        # the busy ones outlived the idle cut and get their whole reply from generation 1
        time.sleep(max(0.0, t0 + IDLE + 1.5 - time.monotonic()))
        cut = [label for label in ("half, after a reply", "half, fresh", "silent")
               if busy[label].readable()]
        assert not cut, f"ended (or answered) before the client had finished: {cut}"
        busy["half, after a reply"].send(b"\r\n")
        busy["half, fresh"].send(b"P/1.1\r\nHost: x\r\n\r\n")
        busy["silent"].send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        replies = {label: read_reply(label, conn, SLOW_MS / 1000 + 5)
                   for label, conn in busy.items()}
        for label, reply in replies.items():
            assert (reply.status, reply.gen) == (200, 1), f"{label}: {reply.first_line}"
        assert len(replies["big, unread"].body) == BIG
        assert replies["slow"].at - slow_sent >= SLOW_MS / 1000

        # answered, they are idle in turn: cut cleanly too
        ends = watch_ends(list(busy.values()), IDLE_CUT_WITHIN)
        assert all(end.kind == "eof" for end in ends), \
            f"{list(busy)} after their replies: {summarize(ends)}"
        wait_old_generation_gone(served, old)
    finally:
        close_all(idle)
        close_all(list(busy.values()))
    served.stop()


def test_drain_idle_0_leaves_idle_connections_to_the_old_generation(
        under_huptime, build_dir, port, nofile):
    """--drain-idle 0: idle connections stay open past the idle cut, generation 1
    answers requests on them, and exits once the client closes them."""
    served = start_keepalive(under_huptime, build_dir, port, "keepalive-noidle",
                             ["--drain-idle", "0", "--drain-timeout", str(DRAIN_TIMEOUT)])
    idle = open_idle(port, 50)
    try:
        old = served.leader
        served.restart()
        t0 = served.serving_at
        with KeepAlive(port) as fresh:
            assert fresh.request("/").gen == 2
        time.sleep(max(0.0, t0 + IDLE_CUT_WITHIN - time.monotonic()))
        ends = watch_ends(idle, 0.0)
        assert all(end.kind == "open" for end in ends), summarize(ends)
        for conn in idle[:5]:
            assert conn.request("/").gen == 1, "the old generation serves its connections"
        assert is_alive(old), "the old generation waits for its clients"
    finally:
        close_all(idle)
    wait_old_generation_gone(served, old)
    served.stop()


def test_exec_restart_is_not_held_by_idle_connections(under_huptime, build_dir, port, nofile):
    """Exec mode, --drain-idle 1, N_IDLE_EXEC idle connections and light load: the
    exec restart is over (generation 2 serving) within EXEC_RESTART_WITHIN s, not
    --drain-timeout; the idle connections end cleanly, queued clients are served."""
    served = start_keepalive(under_huptime, build_dir, port, "keepalive-exec",
                             ["--drain-idle", str(IDLE), "--drain-timeout", str(DRAIN_TIMEOUT)],
                             exec_mode=True)
    idle = open_idle(port, N_IDLE_EXEC)
    try:
        with LoadRunner(port, clients=2, duration=60.0) as load:
            load.wait_until(lambda r: r.ok >= 20)
            before = load.snapshot().ok
            served.restart(timeout=EXEC_RESTART_WITHIN + 10)  # fail fast, not at --drain-timeout
            took = served.serving_at - served.sent_at
            load.wait_until(lambda r: r.saw("gen=2") and r.ok >= before + 20)
        assert took < EXEC_RESTART_WITHIN, f"exec restart took {took:.1f} s"
        assert load.result.failed == 0, load.result.summary()
        ends = watch_ends(idle, 1.0)  # closed before the exec, cleanly
        assert all(end.kind == "eof" for end in ends), summarize(ends)
    finally:
        close_all(idle)
    served.stop()


@pytest.mark.parametrize("family", ["ipv4", "ipv6", "unix"])
def test_a_held_connection_keeps_the_old_generation(under_huptime, port, short_dir, family):
    """The kernel's view finds the connections of each listener family: a request still
    arriving keeps the old generation (no false "drained"), is answered by it, and
    then the old generation exits."""
    import socket
    import sys

    from support.servers import SERVERS_DIR
    sock_path = short_dir / "app.sock"
    command = [sys.executable, str(SERVERS_DIR / "listeners_server.py"),
               f"tcp:127.0.0.1:{port}", f"tcp:[::1]:{port}", f"unix:{sock_path}"]
    served = under_huptime(f"held-{family}", command, options=["--drain-timeout", "60"]).start()
    served.wait_log(r"listening on 3 addresses")
    if family == "unix":
        held = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        held.settimeout(30)
        held.connect(str(sock_path))
    else:
        held = socket.create_connection(("127.0.0.1" if family == "ipv4" else "::1", port),
                                        timeout=30)
    held.sendall(b"GET / HTTP/1.0\r\n")  # the request is not finished
    old = served.leader
    served.restart()
    time.sleep(2 * IDLE + 0.5)  # nothing to wait for: the drain checks several times
    assert is_alive(old), "the old generation left while it held a connection"
    held.sendall(b"\r\n")
    reply = b""
    while chunk := held.recv(4096):
        reply += chunk
    held.close()
    assert reply.startswith(b"HTTP/1.") and b"gen=1" in reply, reply
    wait_old_generation_gone(served, old)
    served.stop()
