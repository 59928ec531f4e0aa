"""--probe and --probe-http: a new generation answers a probe on private twins of its
listeners before it gets the shared ones; a version that fails it is rolled back and no
client ever reaches it. Real servers (threaded, blocking accept, asyncio/epoll, poll,
nginx) under load from 8 clients."""

from __future__ import annotations

import re
import sys

import pytest

from support.huptime import run_huptime, status_json
from support.load import LoadRunner
from support.proc import live_descendants
from support.servers import server_command
from support.wait import wait_for

SERVERS = ("threaded", "blocking", "asyncio", "poll", "nginx")
RESTARTS = 3


def broken_nginx(tmp_path) -> None:
    """nginx's configuration says: every request gets a 500 (read by the next start)."""
    conf = tmp_path / "nginx.conf"
    conf.write_text(conf.read_text().replace('return 200 "pid=$pid gen=nginx\\n";',
                                              'return 500 "broken version\\n";'))


def serve_probed(serve, name, tmp_path, options):
    behaviour = tmp_path / "behaviour"
    return serve(name, options=options, env={"HT_BEHAVIOUR_FILE": str(behaviour)})


@pytest.mark.parametrize("name", SERVERS)
def test_a_passing_probe_hands_the_sockets_over_under_load(serve, port, tmp_path, name):
    server, served = serve_probed(serve, name, tmp_path, ["--probe-http", "/"])
    with LoadRunner(port, clients=8, duration=120.0) as load:
        load.wait_until(lambda r: r.ok >= 20)
        for _ in range(RESTARTS):
            old = served.leader
            served.restart()
            assert served.leader != old
            if server.kind == "gen":
                load.wait_until(lambda r: r.saw(f"gen={served.generation}"))
            else:  # nginx: the replies name the worker; the new ones answer once the old exit
                wait_for(lambda: old not in live_descendants(), 20, f"old master {old} to exit")
                before = load.snapshot().ok
                load.wait_until(lambda r: r.ok >= before + 20)
    assert load.result.failed == 0, load.result.summary()
    log = served.log()
    for n in range(2, RESTARTS + 2):
        assert re.search(rf"generation {n}: 127\.0\.0\.1:{port} is bound privately at "
                         rf"127\.0\.0\.1:\d+ until --probe passes", log), log
        assert re.search(rf"generation {n}: --probe passed in \d+ ms", log), log
    served.stop()


def test_a_server_waiting_in_select_takes_the_shared_socket(serve, port, tmp_path):
    """select() with no timeout on the twin: the shim cannot add its swap pipe to an
    fd_set, so until the swap it makes that select() as a poll() that waits on the pipe
    too. A select woken by the swap itself would look at the number again, find the
    shared socket with nothing queued yet, and sleep on the twin's queue for good: that
    stalled every client in about 1 restart of 18 before; 20 restarts here."""
    _, served = serve("poll", options=["--probe-http", "/"], env={"HT_SELECT": "1"})
    assert served.restarts_under_load(port, 20).failed == 0
    served.stop()


@pytest.mark.parametrize("name", SERVERS)
def test_a_version_that_fails_its_probe_never_meets_a_client(serve, port, tmp_path, name):
    server, served = serve_probed(serve, name, tmp_path, ["--probe-http", "/"])
    with LoadRunner(port, clients=8, duration=120.0) as load:
        load.wait_until(lambda r: r.ok >= 50)
        running = sorted(live_descendants())  # nginx: the master and its 2 workers
        if name == "nginx":
            broken_nginx(tmp_path)
        else:
            (tmp_path / "behaviour").write_text("error500")
        done = run_huptime("--restart", "--", *server.command)
        assert done.returncode == 1, done.stderr
        reason = (r"--probe-http GET / on 127\.0\.0\.1:\d+: "
                  r"HTTP/1\.[01] 500 Internal Server Error")
        assert re.search(reason, done.stderr), done.stderr
        served.wait_log(rf"restart failed: generation 2 \(pid \d+\) {reason}; generation 1 "
                        r"keeps serving")
        [inst] = status_json()
        assert inst["generation"] == 1
        assert re.fullmatch(rf"pid \d+ {reason}", inst["last_failure"]["reason"]), inst
        wait_for(lambda: sorted(live_descendants()) == running, 20,
                 "every process of the failed generation to be gone",
                 detail=lambda: f"{live_descendants()} (before: {running})")
        before = load.snapshot().ok
        load.wait_until(lambda r: r.ok >= before + 50)
        assert load.snapshot().failed == 0, load.snapshot().summary()
    assert load.result.failed == 0, load.result.summary()  # no client ever got a 500
    served.stop()


def test_fast_probed_restarts_never_leave_the_accept_queue_unserved(serve, port):
    """A C server and the shim's own probe make the swap fast enough for its races to
    show: a thread woken by the swap pipe must find the pipe still there. A version
    that closed it stalled every client about once in 150 restarts (with --debug's
    lines widening the window; this test caught it in 1 run of 3)."""
    _, served = serve("c-accept4", options=["--probe-http", "/", "--debug"])
    with LoadRunner(port, clients=8, duration=120.0, timeout=3.0) as load:
        load.wait_until(lambda r: r.ok >= 20)
        for _ in range(300):
            served.restart()
            load.wait_until(lambda r: r.saw(f"gen={served.generation}"), timeout=3.0)
    assert load.result.failed == 0, load.result.summary()
    served.stop()


def test_the_probes_connection_is_all_the_new_generation_serves_before_the_swap(
        serve, port, tmp_path):
    """The probe reads /stats on the twin: the new generation's process has answered
    that one request and no other, while 8 clients loaded the port."""
    seen = tmp_path / "probe-saw"
    probe = (f"{sys.executable} -c \"import os, urllib.request; "
             f"print(urllib.request.urlopen('http://' + os.environ['HUPTIME_PROBE_ADDR'] + "
             f"'/stats').read().decode())\" >> {seen}")
    server, served = serve("blocking", options=["--probe", probe])
    with LoadRunner(port, clients=8, duration=120.0) as load:
        load.wait_until(lambda r: r.ok >= 100)
        served.restart()
        load.wait_until(lambda r: r.saw("gen=2"))
        # The swapped sockets are the generation's listeners like any others.
        [inst] = status_json()
        assert inst["listeners"] == [f"127.0.0.1:{port}"], inst
        done = run_huptime("--restart", "--", *server.command)
        assert done.returncode == 0, done.stderr
        load.wait_until(lambda r: r.saw("gen=3"))
        served.leader = status_json()[0]["pid"]
    assert load.result.failed == 0, load.result.summary()
    lines = seen.read_text().split()
    assert lines[0::3] == ["served=1", "served=1"], lines  # the probe's own request only
    assert lines[2::3] == ["gen=2", "gen=3"], lines
    served.stop()


def test_a_probe_that_hangs_is_ended_at_its_timeout(serve, port, tmp_path):
    marker = tmp_path / "probe-ran"
    _, served = serve("threaded", options=["--probe-timeout", "1", "--probe",
                                           f"touch {marker}; sleep 60; echo never"])
    with LoadRunner(port, clients=4, duration=60.0) as load:
        load.wait_until(lambda r: r.ok >= 20)
        reason = served.expect_rollback()
        assert "--probe did not finish within 1000 ms" in reason, reason
        assert marker.exists()
        wait_for(lambda: live_descendants() == [served.leader], 10,
                 "the probe's processes and the new generation to be gone",
                 detail=lambda: str(live_descendants()))
        before = load.snapshot().ok
        load.wait_until(lambda r: r.ok >= before + 20)
    assert load.result.failed == 0, load.result.summary()
    served.stop()


def test_probe_http_gives_up_at_its_timeout(serve, port):
    """/slow answers after 0.3 s: a 0.1 s --probe-timeout rolls the version back."""
    _, served = serve("threaded", options=["--probe-http", "/slow", "--probe-timeout", "0.1"])
    with LoadRunner(port, clients=4, duration=60.0) as load:
        load.wait_until(lambda r: r.ok >= 20)
        reason = served.expect_rollback()
        assert re.fullmatch(r"generation 2 \(pid \d+\) --probe-http GET /slow on "
                            r"127\.0\.0\.1:\d+: no reply within 100 ms; generation 1 keeps "
                            r"serving", reason), reason
        before = load.snapshot().ok
        load.wait_until(lambda r: r.ok >= before + 20)
    assert load.result.failed == 0, load.result.summary()
    served.stop()


def test_the_probe_gets_every_listeners_twin(serve, port, tmp_path):
    seen = tmp_path / "addrs"
    _, served = serve("threaded", options=["--probe", f'printf "%s\\n" "$HUPTIME_PROBE_ADDRS" '
                                                      f'> {seen}; echo "$HUPTIME_PROBE_ADDR" '
                                                      f'>> {seen}'])
    served.restart()
    pair, first = seen.read_text().splitlines()
    shared, _, private = pair.partition("=")
    assert shared == f"127.0.0.1:{port}"
    assert re.fullmatch(r"127\.0\.0\.1:\d+", private) and private == first
    assert private != shared
    # getsockname() on the twin says the address the program bound (the server prints it)
    assert re.findall(r"listening on (\d+)", served.log()) == [str(port)] * 2, served.log()
    served.stop()


@pytest.mark.parametrize("args, message", [
    (["--exec", "--probe", "true"], "--probe needs fork mode"),
    (["--probe-http", "/", "--listen", "127.0.0.1:1"], "--probe-http does not apply to --listen"),
    (["--probe", "true", "--probe-http", "/"], "--probe and --probe-http exclude each other"),
    (["--probe-http", "healthz"], "--probe-http needs a path such as /healthz"),
    (["--probe-timeout", "2"], "--probe-timeout goes with --probe or --probe-http"),
    (["--probe", " "], "--probe needs a shell command"),
])
def test_probe_options_that_cannot_work_are_refused(args, message):
    done = run_huptime(*args, "--", "true")
    assert done.returncode == 2
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_a_unix_listener_gets_an_abstract_twin(under_huptime, build_dir, port, short_dir):
    """A Unix path listener's twin is an autobound abstract socket; the probe reaches
    it as @NAME with huptime's own client, and the socket file keeps its inode."""
    path = short_dir / "s.sock"
    served = under_huptime("c-rawclose-unix", server_command("c-rawclose", port, build_dir,
                                                            unix=str(path)),
                           options=["--probe-http", "/"]).start()
    inode = path.stat().st_ino
    with LoadRunner(port, unix=str(path), clients=8, duration=120.0) as load:
        load.wait_until(lambda r: r.ok >= 50)
        for n in (2, 3):
            served.restart()
            load.wait_until(lambda r, g=n: r.saw(f"gen={g}"))
    assert load.result.failed == 0, load.result.summary()
    assert re.search(rf"generation 2: unix:{re.escape(str(path))} is bound privately at "
                     r"@[0-9a-f]+ until --probe passes", served.log()), served.log()
    assert path.stat().st_ino == inode
    served.stop()


def test_each_copy_of_a_multi_pool_is_probed(serve, port):
    """--multi 2: each copy's new generation gets its own twins and its own probe."""
    server, served = serve("threaded", options=["--multi", "2", "--probe-http", "/"])
    wait_for(lambda: len([g for g in status_json()[0]["generations"]
                          if g["state"] == "serving"]) == 2, 20, "2 copies serving")
    with LoadRunner(port, clients=8, duration=120.0) as load:
        load.wait_until(lambda r: r.ok >= 50)
        done = run_huptime("--restart", "--", *server.command)
        assert done.returncode == 0, done.stderr
        load.wait_until(lambda r: r.saw("gen=2"))
    assert load.result.failed == 0, load.result.summary()
    assert len(re.findall(r"generation 2: --probe-http|generation 2: --probe passed",
                          served.log())) == 2, served.log()
    served.stop()
