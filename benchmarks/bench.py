"""`make bench`: failures over restarts, switch time, throughput, start cost, instructions,
system calls per connection, SYNs near a restart.

    .venv/bin/python benchmarks/bench.py                 # 100 restarts, every server, both modes
    .venv/bin/python benchmarks/bench.py --quick         # 20 restarts
    .venv/bin/python benchmarks/bench.py --servers c-accept,asyncio --modes fork

benchmarks/README.md says what each column measures and what it should be.
Exit status: 0 if every measurement ran and no request failed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import resource
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchlib as b  # noqa: E402

HERE = Path(__file__).resolve().parent
CLIENTS = 8
DWELL = 0.05              # seconds of load on each generation before the next restart
RESTART_TIMEOUT = 30.0
START_TIMEOUT = 60.0
BODY_TIMEOUT = 10.0       # new generation's first reply, after its "serving" line
THROUGHPUT_SEGMENT = 0.3  # seconds per load segment; 10 rounds: 3 s per configuration,
THROUGHPUT_ROUNDS = 10    # in the order bare fork exec, exec fork bare, ...
THROUGHPUT_WARMUP = 0.3
STARTS = 200              # /bin/true starts per round (d)
START_ROUNDS = 9
CALLGRIND_K = (200, 400)  # requests per callgrind run (e)
CALLGRIND_SERVERS = ("c-accept", "c-accept4")
CALLGRIND_SINGLE = "c-inline"  # (e) also: one thread, accept4, answers in the accepting thread
CALLGRIND_CLIENTS = (1, 8)  # concurrent clients: one (idle between requests), eight (busy)
CALLGRIND_PAUSE = 0.002   # s: the one client's pause between requests
CALLGRIND_REPEATS = 3     # the shim's count varies a little with timing: median of 3
STRACE_SERVERS = ("c-inline", "c-accept4")  # (f); c-inline: the same calls every connection
STRACE_K = 50             # queued clients per strace run (f): K and 2K (the bare backlog: 128)
BACKLOG_SERVER = "http.server"  # (g): a program that asks for a listen queue of 5
NEAR_RESTART = 0.5        # s: requests that end this long after a restart signal are "near"

WRK_SERVERS = ("c-accept4", "c-inline", "nginx")  # (h)
WRK_SECONDS = 2.0         # per round (h); rounds alternate bare, shim, shim, bare, ...
WRK_ROUNDS = 6

SWITCH_SERVER = "c-keepalive"  # (i): epoll, holds thousands of idle keep-alives
SWITCH_IDLE = 10_000      # idle connections held open in the last configuration of (i)
SWITCH_RESTARTS = 10

TARGET_RATIO = 0.99
TARGET_SWITCH_MS = 3.0    # (i): median switch time at both descriptor limits
TARGET_INSTRUCTIONS = 150
TARGET_NEAR_MS = 60.0     # (g): median over restarts of the slowest request near each
TARGET_EXIT = 1.0         # s: an old generation is gone within this (p95) of the switch
EXIT_WAIT = 30.0          # s: longest wait for the old generations at the end of a run
# Besides the servers of the test catalogue: ones that end connections behind libc's back.
SERVERS = (*b.NAMES, "c-fork", "c-rawclose")


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- (a) + (b) restarts

class FirstReply:
    """When the load first got an OK reply whose body carries a token (e.g. gen=3).

        first = FirstReply()
        load = b.LoadRunner(port, on_reply=first.record)

    Stamped by the load threads as each reply is counted.
    """

    def __init__(self) -> None:
        self.times: dict[str, float] = {}

    def record(self, kind: str, latency: float, detail: str) -> None:
        if kind == "ok":
            now = time.monotonic()
            for token in detail.split():
                self.times.setdefault(token, now)

    def wait(self, token: str, timeout: float) -> float | None:
        """When the first reply with token came; None if none within timeout."""
        try:
            return b.wait_for(lambda: self.times.get(token), timeout, token, every=b.POLL)
        except TimeoutError:
            return None


class ExitWatch:
    """When each old generation's leader exits, from a pidfd taken before its restart:
    seconds from its successor's "serving" line. A thread waits on all of them.

        watch = ExitWatch(); watch.add(old_leader, serving_at); ...; watch.close(30)
    """

    def __init__(self) -> None:
        self.waiting: dict[int, float] = {}   # pidfd -> serving_at
        self.exits: list[float] = []
        self.lock = threading.Lock()
        self.done = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def open(self, pid: int) -> int | None:
        try:
            return os.pidfd_open(pid)
        except OSError:
            return None

    def add(self, pidfd: int | None, since: float) -> None:
        if pidfd is not None:
            with self.lock:
                self.waiting[pidfd] = since

    def _run(self) -> None:
        while not self.done:
            with self.lock:
                fds = list(self.waiting)
            if not fds:
                time.sleep(b.POLL)
                continue
            ready, _, _ = select.select(fds, [], [], b.POLL)
            now = time.monotonic()
            with self.lock:
                for fd in ready:
                    self.exits.append(now - self.waiting.pop(fd))
                    os.close(fd)

    def close(self, timeout: float) -> int:
        """Wait (bounded) for the rest; returns how many never exited."""
        b.wait_for(lambda: not self.waiting, timeout, "old generations to exit",
                   every=b.POLL) if self.waiting else None
        self.done = True
        self.thread.join(5)
        with self.lock:
            left = len(self.waiting)
            for fd in self.waiting:
                os.close(fd)
            self.waiting.clear()
        return left


@dataclass
class RestartResult:
    restarts: int = 0
    ok: int = 0
    failed: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    switches: list[float] = field(default_factory=list)   # seconds
    basis: str = ""                                        # "reply" or "log"
    missing_replies: int = 0
    error: str | None = None
    samples: list[str] = field(default_factory=list)
    exits: list[float] = field(default_factory=list)       # fork: old leader gone, s
    lingering: int = 0                                      # fork: old leaders never gone


def measure_restarts(name: str, mode: str, restarts: int, work: Path, build_dir: Path,
                     nginx: str | None) -> RestartResult:
    out = RestartResult()
    tmp = Path(tempfile.mkdtemp(prefix=f"{name}-{mode}-", dir=work))
    port = b.free_port()
    server = b.make_server(name, port, tmp, build_dir, nginx)
    out.basis = "reply" if server.kind == "gen" else "log"
    served_log = tmp / "server.log"
    load = None
    watch = ExitWatch()
    try:
        probe = ["--probe-http", server.path] if mode == "probe" else []  # fork, probed
        served = b.served(server.command, served_log, exec_mode=(mode == "exec"),
                          cwd=tmp, options=probe).start(START_TIMEOUT)
        first = FirstReply()
        load = b.LoadRunner(port, path=server.path, clients=CLIENTS,
                            duration=restarts * 10.0 + 60.0, max_requests=100_000_000,
                            timeout=5.0, on_reply=first.record)
        load.start()
        load.wait_until(lambda r: r.ok >= 20, timeout=15.0)
        for _ in range(restarts):
            old = watch.open(served.leader) if mode != "exec" else None
            served.restart(RESTART_TIMEOUT)
            sent, serving = served.sent_at, served.serving_at
            watch.add(old, serving)
            out.restarts += 1
            if server.kind == "gen":
                replied = first.wait(f"gen={served.generation}", BODY_TIMEOUT)
                if replied is None:
                    out.missing_replies += 1
                else:
                    out.switches.append(max(0.0, replied - sent))
            else:
                out.switches.append(serving - sent)
            served.reap()
            time.sleep(DWELL)
    except (b.ServedError, OSError) as exc:  # TimeoutError is an OSError
        out.error = (str(exc).splitlines() or [type(exc).__name__])[0].removesuffix("; log tail:")
        out.error += f" (log: {served_log})"
        say(f"    {name}/{mode}: {exc}")
    finally:
        if load is not None:
            result = load.stop()
            out.ok = result.ok
            out.failed = result.failed
            out.failures = {k: getattr(result, k) for k in b.FAILURE_CLASSES
                            if getattr(result, k)}
            out.samples = result.error_samples
        try:
            out.lingering = watch.close(EXIT_WAIT)
        except TimeoutError:
            out.lingering = len(watch.waiting)
            watch.done = True
        out.exits = list(watch.exits)
        b.end_descendants()
    return out


# ---------------------------------------------------------------- (c) throughput

def measure_throughput(name: str, modes: list[str], work: Path, build_dir: Path,
                       nginx: str | None) -> tuple[dict[str, dict[str, float]], str | None]:
    """Requests/s for "bare" and each mode: all started at once, loaded in turn.

    Segments alternate (bare fork exec, exec fork bare, ...) so drift and other load
    on the machine hit every configuration alike; the rate is the median segment's.
    Also the server's CPU time (its process tree, user+system) per OK request.
    """
    configs = ["bare", *modes]
    ports, paths, roots = {}, {}, {}
    try:
        for config in configs:
            tmp = Path(tempfile.mkdtemp(prefix=f"{name}-tput-{config}-", dir=work))
            port = b.free_port()
            server = b.make_server(name, port, tmp, build_dir, nginx)
            ports[config], paths[config] = port, server.path
            if config == "bare":
                popen = b.spawn(server.command, tmp / "server.log", env=b.clean_env(), cwd=tmp)
                b.wait_port(port, START_TIMEOUT, path=server.path,
                            alive=lambda p=popen: p.poll() is None)
                roots[config] = popen.pid
            else:
                served = b.served(server.command, tmp / "server.log",
                                  exec_mode=(config == "exec"), cwd=tmp).start(START_TIMEOUT)
                roots[config] = served.leader
        for config in configs:
            b.run_load(ports[config], path=paths[config], clients=CLIENTS,
                       duration=THROUGHPUT_WARMUP, timeout=5.0)
        segment_rates: dict[str, list[float]] = {c: [] for c in configs}
        cpu = dict.fromkeys(configs, 0.0)
        served_ok = dict.fromkeys(configs, 0)
        failed = 0
        for round_ in range(THROUGHPUT_ROUNDS):
            for config in configs if round_ % 2 == 0 else reversed(configs):
                before = b.cpu_seconds(roots[config])
                result = b.run_load(ports[config], path=paths[config], clients=CLIENTS,
                                    duration=THROUGHPUT_SEGMENT, max_requests=100_000_000,
                                    timeout=5.0)
                cpu[config] += b.cpu_seconds(roots[config]) - before
                served_ok[config] += result.ok
                segment_rates[config].append(result.ok / result.elapsed)
                failed += result.failed
        rates = {c: b.median(segment_rates[c]) for c in configs}
        cpu_per_request = {c: cpu[c] / served_ok[c] if served_ok[c] else 0.0 for c in configs}
        return ({"rate": rates, "cpu": cpu_per_request},
                f"{failed} requests failed" if failed else None)
    except (b.ServedError, OSError) as exc:
        say(f"    {name}/throughput: {exc}")
        return {}, str(exc).splitlines()[0]
    finally:
        b.end_descendants()


# ---------------------------------------------------------------- (d) start cost

def compile_helper(work: Path) -> Path:
    binary = work / "startcost"
    command = ["cc", "-O2", "-Wall", "-o", str(binary), str(HERE / "startcost.c")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise b.BenchError(f"{' '.join(command)}: {done.stderr.strip()}")
    return binary


def nofile_limit(soft: int):
    def apply():
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, hard), hard))
    return apply


def start_ns(helper: Path, shim: Path | None, nofile: int, count: int,
             debug: bool = False) -> tuple[int, str]:
    argv = [str(helper), str(count), "/bin/true", *([str(shim)] if shim else [])]
    env = b.clean_env({"HUPTIME_DEBUG": "1"} if debug else None)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env,
                          preexec_fn=nofile_limit(nofile))
    if done.returncode != 0:
        raise b.BenchError(f"startcost failed: {done.stderr.strip()}")
    return int(done.stdout.split()[0]), done.stderr


def measure_start_cost(work: Path, shim: Path) -> dict:
    helper = compile_helper(work)
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    limits = [1024, hard] if hard > 1024 else [hard]
    _, debug = start_ns(helper, shim, limits[0], 1, debug=True)
    if "active" not in debug:
        raise b.BenchError(f"the shim was not active in /bin/true: {debug.strip()!r}")
    samples = {(n, s): [] for n in limits for s in (False, True)}
    for _ in range(START_ROUNDS):  # interleaved, so drift hits every configuration alike
        for n in limits:
            for with_shim in (False, True):
                ns, _ = start_ns(helper, shim if with_shim else None, n, STARTS)
                samples[(n, with_shim)].append(ns / 1000.0)
    return {"limits": limits,
            "us": {key: b.median(values) for key, values in samples.items()}}


# ---------------------------------------------------------------- (e) instructions

CALLGRIND_SHIM = ('exec env HUPTIME_PID=$$ HUPTIME_MODE=fork LD_PRELOAD="$0" '
                  'valgrind --tool=callgrind --callgrind-out-file="$1" "$2" "$3"')
# The bare run gets the same environment with an empty preload: the test server
# reads HUPTIME_GENERATION with getenv() on every request, whose cost grows with
# the environment, and that is not the shim's.
CALLGRIND_BARE = ('exec env HUPTIME_PID=$$ HUPTIME_MODE=fork LD_PRELOAD= '
                  'valgrind --tool=callgrind --callgrind-out-file="$1" "$2" "$3"')


def callgrind_total(binary: Path, shim: Path | None, requests: int, work: Path,
                    clients: int = 1) -> int:
    port = b.free_port()
    tag = f"{binary.name}-{'shim' if shim else 'bare'}-{requests}-{clients}"
    out, log_path = work / f"callgrind-{tag}.out", work / f"callgrind-{tag}.log"
    script = CALLGRIND_SHIM if shim else CALLGRIND_BARE
    env = b.clean_env()
    env.pop("LD_PRELOAD", None)
    popen = b.spawn(["/bin/sh", "-c", script, str(shim or ""), str(out), str(binary),
                     str(port)], log_path, env=env)
    log = b.LogFile(log_path)
    try:
        alive = lambda: popen.poll() is None  # noqa: E731
        log.wait(rf"listening on {port}", START_TIMEOUT, alive=alive, every=b.POLL)
        if shim:
            log.wait(r"generation 1 serving", START_TIMEOUT, alive=alive, every=b.POLL)
        # One client pauses between requests, so that the server is idle each time a
        # connection comes (its accept waits first): the same path every time,
        # where a client that reconnects at once races the server under valgrind.
        pause = (lambda *_: time.sleep(CALLGRIND_PAUSE)) if clients == 1 else None
        result = b.run_load(port, clients=clients, duration=300.0, max_requests=requests,
                            timeout=20.0, on_reply=pause)
        if result.ok != requests:
            raise b.BenchError(f"callgrind {tag}: {result.summary()}")
        os.kill(popen.pid, signal.SIGTERM)
        popen.wait(60)
    finally:
        if popen.poll() is None:
            os.kill(popen.pid, signal.SIGKILL)
            popen.wait(10)
    for line in out.read_text(errors="replace").splitlines():
        if line.startswith(("totals:", "summary:")):
            return int(line.split()[1])
    raise b.BenchError(f"no totals in {out}; log tail:\n{log.tail()}")


def measure_instructions(binary: Path, shim: Path, work: Path, clients: int) -> dict:
    """Callgrind totals for K=200 and K=400 requests from `clients` concurrent clients,
    bare and shim; the repeat with the median."""
    small, large = CALLGRIND_K
    runs = []
    try:
        for _ in range(CALLGRIND_REPEATS):
            totals = {}
            for with_shim in (False, True):
                for k in (small, large):
                    totals[(with_shim, k)] = callgrind_total(
                        binary, shim if with_shim else None, k, work, clients)
            bare = totals[(False, large)] - totals[(False, small)]
            shimmed = totals[(True, large)] - totals[(True, small)]
            runs.append({"totals": totals, "added": (shimmed - bare) / (large - small)})
    finally:
        b.end_descendants()
    runs.sort(key=lambda run: run["added"])
    chosen = dict(runs[len(runs) // 2])
    chosen["range"] = (runs[0]["added"], runs[-1]["added"])
    return chosen


# ---------------------------------------------------------------- (f) system calls

def measure_syscalls(name: str, shim: Path, work: Path, build_dir: Path) -> dict:
    """System calls per connection, bare and shim, by strace (support/syscalls.py)."""
    port = b.free_port()
    argv = b.server_command(name, port, build_dir)
    tmp = Path(tempfile.mkdtemp(prefix=f"strace-{name}-", dir=work))
    bare = b.calls_per_batch(argv, port, None, STRACE_K, tmp)
    shimmed = b.calls_per_batch(argv, port, shim, STRACE_K, tmp)
    added = {n: shimmed.get(n, 0) - bare.get(n, 0) for n in bare | shimmed}
    return {"bare": sum(bare.values()) / STRACE_K, "shim": sum(shimmed.values()) / STRACE_K,
            "added": {n: v for n, v in added.items() if v}}


# ---------------------------------------------------------------- (g) SYNs near a restart

def listen_overflows() -> int:
    """TcpExtListenOverflows of this network namespace."""
    with open("/proc/net/netstat") as f:
        head, values = [line.split() for line in f if line.startswith("TcpExt:")][:2]
    return int(dict(zip(head[1:], values[1:]))["ListenOverflows"])


def measure_near_restart(backlog: str, restarts: int, work: Path, build_dir: Path) -> dict:
    """http.server under 8 clients, `restarts` fork-mode restarts with --backlog:
    failed requests, listen overflows, and per restart the slowest request that ended
    within NEAR_RESTART s of its signal."""
    tmp = Path(tempfile.mkdtemp(prefix=f"backlog-{backlog}-", dir=work))
    port = b.free_port()
    server = b.make_server(BACKLOG_SERVER, port, tmp, build_dir, None)
    ends: list[tuple[float, float]] = []  # (when a request ended, its latency)
    lock = threading.Lock()

    def on_reply(kind: str, latency: float, detail: str) -> None:
        with lock:
            ends.append((time.monotonic(), latency))

    served = b.served(server.command, tmp / "server.log", cwd=tmp,
                      options=["--backlog", backlog]).start(START_TIMEOUT)
    signals = []
    load = b.LoadRunner(port, path=server.path, clients=CLIENTS, duration=restarts * 10.0 + 60,
                        max_requests=100_000_000, timeout=10.0, on_reply=on_reply)
    overflows = listen_overflows()
    load.start()
    try:
        load.wait_until(lambda r: r.ok >= 20, timeout=15.0)
        for _ in range(restarts):
            served.restart(RESTART_TIMEOUT)
            signals.append(served.sent_at)
            served.reap()
            time.sleep(NEAR_RESTART + DWELL)
    finally:
        result = load.stop()
        b.end_descendants()
    with lock:
        slowest = [max((lat for end, lat in ends if sent <= end <= sent + NEAR_RESTART),
                       default=0.0) for sent in signals]
    return {"failed": result.failed, "ok": result.ok,
            "overflows": listen_overflows() - overflows, "slowest": slowest}


# ---------------------------------------------------------------- (h) throughput, native client

def wrk_round(port: int, path: str, seconds: float) -> tuple[float, str]:
    """wrk on CPU 0, CLIENTS connections (one thread): requests/s, and its error
    lines ("" if none)."""
    done = subprocess.run(["taskset", "-c", "0", "wrk", "-t1", f"-c{CLIENTS}",
                           f"-d{seconds:g}s", f"http://127.0.0.1:{port}{path}"],
                          capture_output=True, text=True, timeout=seconds + 30)
    rate = [line.split()[1] for line in done.stdout.splitlines()
            if line.startswith("Requests/sec:")]
    errors = [line.strip() for line in done.stdout.splitlines()
              if "errors" in line or "Non-2xx" in line]
    if done.returncode != 0 or not rate:
        raise b.BenchError(f"wrk: {done.stderr.strip() or done.stdout.strip()}")
    return float(rate[0]), "; ".join(errors)


def measure_wrk(name: str, work: Path, build_dir: Path, nginx: str | None,
                rounds: int) -> dict:
    """Requests/s by wrk (CPU 0) against the server (CPU 1), bare and under huptime
    (fork mode), in alternating rounds; per round the shim/bare ratio."""
    ports, paths = {}, {}
    try:
        for config in ("bare", "shim"):
            tmp = Path(tempfile.mkdtemp(prefix=f"{name}-wrk-{config}-", dir=work))
            port = b.free_port()
            server = b.make_server(name, port, tmp, build_dir, nginx)
            command = ["taskset", "-c", "1", *server.command]
            ports[config], paths[config] = port, server.path
            if config == "bare":
                popen = b.spawn(command, tmp / "server.log", env=b.clean_env(), cwd=tmp)
                b.wait_port(port, START_TIMEOUT, path=server.path,
                            alive=lambda p=popen: p.poll() is None)
            else:
                b.served(command, tmp / "server.log", cwd=tmp).start(START_TIMEOUT)
        rates: dict[str, list[float]] = {"bare": [], "shim": []}
        errors = set()
        for config in ("bare", "shim"):  # warm-up
            wrk_round(ports[config], paths[config], 1)
        for round_ in range(rounds):
            for config in ("bare", "shim") if round_ % 2 == 0 else ("shim", "bare"):
                rate, error = wrk_round(ports[config], paths[config], WRK_SECONDS)
                rates[config].append(rate)
                if error:
                    errors.add(f"{config}: {error}")
        ratios = sorted(s / r for s, r in zip(rates["shim"], rates["bare"]))
        return {"bare": b.median(rates["bare"]), "shim": b.median(rates["shim"]),
                "ratio": b.median(ratios), "range": (ratios[0], ratios[-1]),
                "errors": sorted(errors)}
    finally:
        b.end_descendants()


# ---------------------------------------------------------------- (i) switch time, scale

def measure_switch(nofile: int, idle: int, restarts: int, work: Path, build_dir: Path) -> dict:
    """SWITCH_SERVER under huptime (fork mode) at RLIMIT_NOFILE nofile, with `idle`
    keep-alive connections held open on it: per restart, the signal to the first OK
    reply of the new generation (2 clients of load)."""
    tmp = Path(tempfile.mkdtemp(prefix=f"switch-{nofile}-{idle}-", dir=work))
    port = b.free_port()
    server = b.make_server(SWITCH_SERVER, port, tmp, build_dir, None)
    served = b.Served(b.PopenStarter(tmp / "server.log"), server.command, cwd=tmp,
                      every=b.POLL, wrapper=["sh", "-c", f'ulimit -n {nofile} && exec "$@"', "sh"])
    conns = []
    switches = []
    try:
        served.start(START_TIMEOUT)
        conns = b.open_idle(port, idle)
        first = FirstReply()
        with b.LoadRunner(port, clients=2, duration=restarts * 10.0 + 60.0,
                          max_requests=100_000_000, timeout=5.0, on_reply=first.record) as load:
            load.wait_until(lambda r: r.ok >= 20, timeout=15.0)
            for _ in range(restarts):
                served.restart(RESTART_TIMEOUT)
                replied = first.wait(f"gen={served.generation}", BODY_TIMEOUT)
                if replied is None:
                    raise b.BenchError(f"no reply from generation {served.generation}")
                switches.append(max(0.0, replied - served.sent_at))
                served.reap()
                time.sleep(DWELL)
        failed = load.result.failed
    finally:
        b.close_all(conns)
        b.end_descendants()
    return {"switches": switches, "failed": failed}


# ---------------------------------------------------------------- report

def ms(seconds: float) -> str:
    return f"{1000 * seconds:.1f}"


def exit_text(r: RestartResult) -> str:
    """Fork mode: the old generation's leader gone after the new one serves."""
    if not r.exits and not r.lingering:
        return "-"
    text = (f"{ms(b.median(r.exits))}/{ms(b.percentile(r.exits, 0.95))}" if r.exits else "-")
    return text + (f" ({r.lingering} stayed)" if r.lingering else "")


def failure_text(r: RestartResult) -> str:
    parts = [f"{k}={v}" for k, v in r.failures.items()]
    if r.error:
        parts.append("ERROR")
    if r.missing_replies:
        parts.append(f"no-reply={r.missing_replies}")
    return " ".join(parts) or "-"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--restarts", type=int, default=100, help="restarts per server and mode")
    parser.add_argument("--servers", default="all",
                        help=f"comma-separated, from {','.join(SERVERS)} (default: all; "
                             f"nginx only if installed)")
    parser.add_argument("--modes", default="fork,exec,probe",
                        help="fork,exec,probe (default all; probe: fork mode with "
                             "--probe-http on the server's path)")
    parser.add_argument("--quick", action="store_true", help="20 restarts")
    parser.add_argument("--keep", action="store_true",
                        help="keep the work directory (server logs) even if all went well")
    args = parser.parse_args()
    restarts = 20 if args.quick else args.restarts
    if not 1 <= restarts <= 10_000:
        parser.error("--restarts must be between 1 and 10000")
    nginx = b.find_nginx()
    if args.servers == "all":
        servers = [n for n in SERVERS if n != "nginx" or nginx]
    else:
        servers = [s.strip() for s in args.servers.split(",") if s.strip()]
        unknown = [s for s in servers if s not in SERVERS]
        if unknown:
            parser.error(f"unknown server(s) {','.join(unknown)}; choose from {','.join(SERVERS)}")
        if "nginx" in servers and not nginx:
            parser.error("nginx is not installed")
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not modes or any(m not in ("fork", "exec", "probe") for m in modes):
        parser.error("--modes takes fork, exec, probe (fork mode with --probe-http) or a list")

    b.prepare()
    sys.setswitchinterval(0.001)  # the load threads and the timing loop share one GIL
    shim = b.shim_path()
    work = Path(tempfile.mkdtemp(prefix="huptime-bench-"))
    build_dir = work / "build"
    build_dir.mkdir()
    began = time.monotonic()
    print(f"huptime bench: {', '.join(servers)}; modes {', '.join(modes)}; {restarts} restarts "
          f"each under {CLIENTS}-client load (new connection per request)", flush=True)
    errors = 0
    try:
        for name in servers:  # build what needs building before anything is timed
            if name.startswith("c-"):
                b.make_server(name, 0, work, build_dir)

        restart_results: dict[tuple[str, str], RestartResult] = {}
        rates: dict[str, dict[str, float]] = {}
        for name in servers:
            steady = [m for m in modes if m != "probe"]  # a probe costs nothing between restarts
            say(f"  {name}: throughput (bare, {', '.join(steady)})")
            rates[name], problem = measure_throughput(name, steady, work, build_dir, nginx)
            errors += problem is not None
            for mode in modes:
                say(f"  {name}: {restarts} restarts, {mode} mode")
                r = measure_restarts(name, mode, restarts, work, build_dir, nginx)
                restart_results[(name, mode)] = r
                errors += r.error is not None

        say("  start cost: /bin/true with and without the shim")
        try:
            start = measure_start_cost(work, shim)
        except (b.ServedError, OSError, subprocess.SubprocessError) as exc:
            start, errors = {"error": str(exc)}, errors + 1

        instructions: dict[tuple[str, int], dict | str] = {}
        if not shutil.which("valgrind"):
            instructions = {("", 0): "skipped (no valgrind)"}
        else:
            for name in ([s for s in CALLGRIND_SERVERS if s in servers] or [CALLGRIND_SERVERS[0]]) \
                    + [CALLGRIND_SINGLE]:
                binary = Path(b.server_command(name, 0, build_dir)[0])
                for clients in CALLGRIND_CLIENTS:
                    say(f"  instructions: {name} under callgrind, {clients} client(s)")
                    try:
                        instructions[(name, clients)] = measure_instructions(binary, shim, work,
                                                                             clients)
                    except (b.ServedError, OSError, subprocess.SubprocessError) as exc:
                        instructions[(name, clients)] = f"error: {str(exc).splitlines()[0]}"
                        errors += 1

        syscalls: dict[str, dict | str] = {}
        for name in STRACE_SERVERS:
            say(f"  system calls: {name} under strace")
            if not shutil.which("strace"):
                syscalls[name] = "skipped (no strace)"
                continue
            try:
                syscalls[name] = measure_syscalls(name, shim, work, build_dir)
            except (b.ServedError, OSError, AssertionError, subprocess.SubprocessError) as exc:
                syscalls[name] = f"error: {str(exc).splitlines()[0]}"
                errors += 1

        native: dict[str, dict | str] = {}
        for name in [n for n in WRK_SERVERS if n != "nginx" or nginx]:
            say(f"  throughput by wrk: {name}")
            if not shutil.which("wrk") or not shutil.which("taskset"):
                native[name] = "skipped (no wrk or taskset: apt-get install wrk)"
                continue
            try:
                native[name] = measure_wrk(name, work, build_dir, nginx,
                                           3 if args.quick else WRK_ROUNDS)
            except (b.ServedError, OSError, subprocess.SubprocessError) as exc:
                native[name] = f"error: {str(exc).splitlines()[0]}"
                errors += 1

        scale: dict[tuple[int, int], dict | str] = {}
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        top = 1 << 20 if hard == resource.RLIM_INFINITY else min(hard, 1 << 20)
        if top > soft:
            resource.setrlimit(resource.RLIMIT_NOFILE, (top, hard))  # for the idle clients
        configs = [(1024, 0), (top, 0)] + ([(top, SWITCH_IDLE)] if top > SWITCH_IDLE + 1000
                                            else [])
        for nofile, idle in configs:
            say(f"  switch time: {SWITCH_SERVER}, RLIMIT_NOFILE {nofile}, {idle} idle")
            try:
                scale[(nofile, idle)] = measure_switch(nofile, idle, 3 if args.quick else
                                                       SWITCH_RESTARTS, work, build_dir)
            except (b.ServedError, OSError) as exc:
                scale[(nofile, idle)] = f"error: {str(exc).splitlines()[0]}"
                errors += 1

        near: dict[str, dict | str] = {}
        for backlog in ("511", "0"):
            say(f"  SYNs near a restart: {BACKLOG_SERVER} --backlog {backlog}")
            try:
                near[backlog] = measure_near_restart(backlog, restarts, work, build_dir)
            except (b.ServedError, OSError) as exc:
                near[backlog] = f"error: {str(exc).splitlines()[0]}"
                errors += 1
    finally:
        b.end_descendants()

    # ---- (a) (b) (c): one row per server and mode
    headers = ["server", "mode", "restarts", "ok", "failed", "failure classes",
               "switch med ms", "switch p95 ms", "switch by", "old gone med/p95 ms",
               "bare req/s", "shim req/s", "shim/bare", "cpu/req shim/bare"]
    rows = []
    for name in servers:
        for mode in modes:
            r = restart_results[(name, mode)]
            rate = rates.get(name, {}).get("rate", {})
            cpu = rates.get(name, {}).get("cpu", {})
            bare, shimmed = rate.get("bare"), rate.get(mode)
            cpu_bare, cpu_shim = cpu.get("bare"), cpu.get(mode)
            rows.append([
                name, mode, f"{r.restarts}/{restarts}", str(r.ok), str(r.failed),
                failure_text(r),
                ms(b.median(r.switches)) if r.switches else "-",
                ms(b.percentile(r.switches, 0.95)) if r.switches else "-",
                r.basis,
                exit_text(r),
                f"{bare:.0f}" if bare else "-", f"{shimmed:.0f}" if shimmed else "-",
                f"{shimmed / bare:.3f}" if bare and shimmed else "-",
                f"{cpu_shim / cpu_bare:.3f}" if cpu_bare and cpu_shim else "-",
            ])
    print()
    print("(a) failed requests over restarts, (b) switch time, (c) throughput with the shim")
    print(b.table(headers, rows, right={2, 3, 4, 6, 7, 9, 10, 11, 12, 13}))
    total_failed = sum(r.failed for r in restart_results.values())
    ratios = [float(row[12]) for row in rows if row[12] != "-"]
    lowest = f"lowest {min(ratios):.3f}" if ratios else "not measured"
    exits = [x for r in restart_results.values() for x in r.exits]
    stayed = sum(r.lingering for r in restart_results.values())
    worst = (f"worst p95 {ms(max(b.percentile(r.exits, 0.95) for r in restart_results.values() if r.exits))} ms"
             if exits else "not measured")
    print(f"targets: 0 failed (got {total_failed}); shim/bare >= {TARGET_RATIO} ({lowest}); "
          f"switch time: numbers only (by reply: signal -> first OK reply with gen=N; "
          f"by log: signal -> \"generation N serving\" line seen); old gone (fork): the old "
          f"leader's exit after the new one serves, p95 <= {ms(TARGET_EXIT)} ms ({worst}, "
          f"{stayed} stayed); cpu/req: the server's CPU time per request, shim vs bare, "
          f"for reference")
    for (name, mode), r in restart_results.items():
        if r.error:
            print(f"  {name}/{mode} error: {r.error}")
        if r.samples:
            print(f"  {name}/{mode} failure samples: {'; '.join(r.samples[:3])}")

    # ---- (d)
    print()
    print(f"(d) start cost: fork+exec+exit of /bin/true, {STARTS} starts x {START_ROUNDS} rounds "
          f"(median of rounds), shim active (HUPTIME_MODE=fork, HUPTIME_PID=own pid)")
    if "error" in start:
        print(f"  error: {start['error']}")
    else:
        us = start["us"]
        drows = []
        for n in start["limits"]:
            label = f"{n}" + (" (hard max)" if n == start["limits"][-1] and n != 1024 else "")
            drows.append([label, f"{us[(n, False)]:.0f}", f"{us[(n, True)]:.0f}",
                          f"{us[(n, True)] - us[(n, False)]:+.0f}"])
        print(b.table(["RLIMIT_NOFILE", "bare us/start", "shim us/start", "added us"],
                      drows, right={1, 2, 3}))
        if len(start["limits"]) == 2:
            low, high = start["limits"]
            added_low = us[(low, True)] - us[(low, False)]
            added_high = us[(high, True)] - us[(high, False)]
            print(f"target: added cost independent of RLIMIT_NOFILE (at {high}: "
                  f"{added_high - added_low:+.0f} us vs at {low})")

    # ---- (e)
    print()
    print(f"(e) instructions per accepted connection (callgrind Ir, K={CALLGRIND_K[0]} and "
          f"{CALLGRIND_K[1]} requests from 1 or 8 concurrent clients; median of "
          f"{CALLGRIND_REPEATS} repeats)")
    erows = []
    for (name, clients), m in instructions.items():
        if not name:
            print(f"  {m}")
            continue
        if isinstance(m, str):
            erows.append([name, str(clients), m, "", "", "", "", ""])
            continue
        t = m["totals"]
        small, large = CALLGRIND_K
        low, high = m["range"]
        erows.append([name, str(clients), f"{t[(False, small)]:,}", f"{t[(False, large)]:,}",
                      f"{t[(True, small)]:,}", f"{t[(True, large)]:,}", f"{m['added']:.0f}",
                      f"{low:.0f}..{high:.0f}"])
    if erows:
        print(b.table(["server", "clients", f"bare Ir({CALLGRIND_K[0]})",
                       f"bare Ir({CALLGRIND_K[1]})", f"shim Ir({CALLGRIND_K[0]})",
                       f"shim Ir({CALLGRIND_K[1]})", "added Ir/conn",
                       f"range of {CALLGRIND_REPEATS}"], erows, right={1, 2, 3, 4, 5, 6, 7}))
    print(f"target: <= {TARGET_INSTRUCTIONS} instructions added per connection (c-accept, "
          f"c-accept4: cserver.c answers each connection in a thread of its own, so it is "
          f"multi-threaded bare too; {CALLGRIND_SINGLE}: one thread, whose calls the shim makes "
          f"directly so that its restart thread costs no cancellation wrappers; 1 client: the "
          f"idle path, a poll() before each accept)")

    # ---- (f)
    print()
    print(f"(f) system calls per connection (strace, all threads; {STRACE_K} and "
          f"{2 * STRACE_K} clients queued while the server is stopped, by difference)")
    frows = []
    for name, m in syscalls.items():
        if isinstance(m, str):
            frows.append([name, m, "", ""])
            continue
        added = " ".join(f"{n}{v:+d}" for n, v in sorted(m["added"].items())) or "none"
        frows.append([name, f"{m['bare']:.2f}", f"{m['shim']:.2f}", added])
    print(b.table(["server", "bare calls/conn", "shim calls/conn",
                   f"added calls in {STRACE_K} conns"], frows, right={1, 2}))
    print("target: +0 per connection (the call the stop interrupts may show as +-1)")

    # ---- (g)
    print()
    print(f"(g) SYNs near a restart: {BACKLOG_SERVER} (it asks for a listen queue of 5) under "
          f"{CLIENTS} clients, {restarts} fork-mode restarts; per restart, the slowest request "
          f"ending within {NEAR_RESTART} s of the signal")
    grows = []
    for backlog, m in near.items():
        if isinstance(m, str):
            grows.append([backlog, m, "", "", "", ""])
            continue
        s = m["slowest"]
        grows.append([backlog, str(m["ok"]), str(m["failed"]), str(m["overflows"]),
                      ms(b.median(s)) if s else "-", ms(max(s)) if s else "-"])
    print(b.table(["--backlog", "ok", "failed", "ListenOverflows +", "slowest near med ms",
                   "max ms"], grows, right={1, 2, 3, 4, 5}))
    print(f"target with the default (511): 0 failed, ListenOverflows +0, median <= "
          f"{TARGET_NEAR_MS:.0f} ms; --backlog 0 keeps the program's own queue, for reference")

    # ---- (h)
    print()
    print(f"(h) throughput by a native client: wrk (1 thread, {CLIENTS} connections, CPU 0) "
          f"against the server (CPU 1), {WRK_SECONDS:g} s rounds alternating bare and shim "
          f"(fork mode); a new connection per request (the servers close)")
    hrows = []
    for name, m in native.items():
        if isinstance(m, str):
            hrows.append([name, m, "", "", ""])
            continue
        low, high = m["range"]
        hrows.append([name, f"{m['bare']:.0f}", f"{m['shim']:.0f}", f"{m['ratio']:.3f}",
                      f"{low:.3f}..{high:.3f}" + (f"  ({'; '.join(m['errors'])})"
                                                 if m["errors"] else "")])
    print(b.table(["server", "bare req/s", "shim req/s", "shim/bare (median)",
                   "range of rounds"], hrows, right={1, 2, 3}))
    print(f"target: shim/bare >= {TARGET_RATIO} where the range allows a verdict")

    # ---- (i)
    print()
    print(f"(i) switch time at scale: {SWITCH_SERVER}, fork mode, signal -> first OK reply of "
          f"the new generation (2 clients of load), by RLIMIT_NOFILE and idle keep-alive "
          f"connections held open")
    irows = []
    for (nofile, idle), m in scale.items():
        if isinstance(m, str):
            irows.append([str(nofile), str(idle), m, "", "", ""])
            continue
        s = m["switches"]
        irows.append([str(nofile), str(idle), str(len(s)), ms(b.median(s)), ms(max(s)),
                      str(m["failed"])])
    print(b.table(["RLIMIT_NOFILE", "idle conns", "restarts", "switch med ms", "max ms",
                   "failed"], irows, right={0, 1, 2, 3, 4, 5}))
    print(f"target: median <= {TARGET_SWITCH_MS:.0f} ms at both limits; with {SWITCH_IDLE} idle "
          f"connections within 2x of none")

    print()
    print(f"total time {time.monotonic() - began:.0f} s")
    near_failed = near["511"]["failed"] if isinstance(near.get("511"), dict) else 0
    passed = total_failed == 0 and near_failed == 0 and errors == 0
    if args.keep or not passed:
        print(f"server logs kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if passed else 1


if __name__ == "__main__":
    b.run_main(main)
