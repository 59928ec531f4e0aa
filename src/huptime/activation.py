"""--listen: restart a program the shim cannot enter by passing it sockets, systemd style.

huptime binds and listens itself, stays the program's parent and holds the
sockets, so clients queue in the kernel whenever no program accepts. Each start
of the program (a generation; --multi N copies of it) gets them at descriptors
3.. with LISTEN_FDS, LISTEN_PID (its own PID) and LISTEN_FDNAMES, as systemd's
socket activation gives them, and a NOTIFY_SOCKET of its own. On the restart
signal a new generation starts on the same sockets; once it is ready
(readiness.py) the old one gets --drain-signal (SIGTERM by default) and has
--drain-timeout to exit before SIGKILL. A new generation that exits, or is not
ready within --ready-timeout, is stopped and the old one keeps serving. The
instance record holds a page per generation naming the program's PID and mapped
by this process, the supervisor: --restart and --stop signal this process.
"""

from __future__ import annotations

import fcntl
import os
import pwd
import select
import signal as signals
import sys
import time
from dataclasses import dataclass, field

from huptime import protocol, readiness
from huptime.launcher import Settings
from huptime.notify import Notifier
from huptime.procfs import descendants
from huptime.record import Page
from huptime.supervisor import (BACKOFF_FIRST, BACKOFF_MAX, STABLE_AFTER, describe_exit,
                                exec_child, exit_status, log, pin_record)

FIRST_FD = 3  # SD_LISTEN_FDS_START
TICKS = (0.5, 0.005, 0.02)  # /proc is looked at every 5 ms in a start's first 0.5 s, then 20 ms
ROLLBACK_GRACE = 5.0
MAX_TREE = 10_000  # processes looked at below one start  # a generation stopped before it served: SIGTERM, then SIGKILL


@dataclass
class Copy:
    pid: int = 0
    started: float = 0.0
    ready_by: str = ""
    notify: readiness.NotifySocket | None = None
    revive_at: float | None = None
    delay: float = BACKOFF_FIRST


@dataclass
class Generation:
    number: int
    copies: list[Copy]
    started: float
    page: Page | None = None
    serving: bool = False
    stop_at: float | None = None  # SIGKILL then (draining or stopped before serving)
    pids: set[int] = field(default_factory=set)


class Activation:
    def __init__(self, program: str, command: list[str], env: dict[str, str],
                 settings: Settings, sockets: list[tuple[int, str, str]], record: str | None,
                 user: pwd.struct_passwd | None) -> None:
        self.program, self.command, self.env, self.settings = program, command, env, settings
        self.fds = [fd for fd, _, _ in sockets]
        self.names = ":".join(name for _, name, _ in sockets)
        self.listeners = " ".join(text for _, _, text in sockets)
        self.inodes = {readiness.socket_inode(fd) for fd in self.fds}
        self.record, self.user = record, user
        self.ready_mode = settings.ready
        self.notifier = Notifier.from_environment(self.env)  # systemd's, not the program's
        self.serving: Generation | None = None
        self.starting: Generation | None = None
        self.stopped: list[Generation] = []  # draining, or stopped before serving
        self.number = 0
        self.stopping = False
        self.status = 0
        self.events = os.open(os.path.join(record, "events"),
                              os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600) \
            if record else -1

    # -- record --------------------------------------------------------------

    def event(self, number: int, pid: int, word: str, rest: str = "") -> None:
        if self.events >= 0:
            line = f"{int(time.time() * 1000)} {number} {pid} {word} {rest}".rstrip() + "\n"
            os.write(self.events, line.encode())

    # -- starting ------------------------------------------------------------

    def spawn(self, gen: Generation, copy: Copy, slot: int) -> None:
        env = dict(self.env)
        env[protocol.ENV_GENERATION] = str(gen.number)
        env["LISTEN_FDS"] = str(len(self.fds))
        env["LISTEN_FDNAMES"] = self.names
        if len(gen.copies) > 1:
            env[protocol.ENV_SLOT] = str(slot)
        if copy.notify is not None:
            copy.notify.close()
        copy.notify = None
        if self.ready_mode in ("auto", "notify"):
            name = f"\0huptime-notify-{os.getpid()}-{gen.number}-{slot}-{time.monotonic_ns()}"
            copy.notify = readiness.NotifySocket(name)
            env["NOTIFY_SOCKET"] = "@" + name[1:]
        pid = os.fork()
        if pid == 0:
            self.exec_child(env)
        copy.pid, copy.started, copy.ready_by, copy.revive_at = pid, time.monotonic(), "", None
        gen.pids.add(pid)
        if gen.page is not None and slot == 0:
            gen.page.page.leader = pid

    def exec_child(self, env: dict[str, str]) -> None:
        """In the forked child: the sockets at 3.., the user, then exec; never returns."""
        def prepare() -> None:
            above = FIRST_FD + len(self.fds)  # copies up there first: none is overwritten
            high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, above) for fd in self.fds]
            for i, fd in enumerate(high):
                os.dup2(fd, FIRST_FD + i, inheritable=True)
            os.closerange(above, 0x7FFFFFFF)
            env["LISTEN_PID"] = str(os.getpid())
            if self.user is not None:
                os.initgroups(self.user.pw_name, self.user.pw_gid)
                os.setgid(self.user.pw_gid)
                os.setuid(self.user.pw_uid)
        exec_child(self.program, self.command, env, self.settings.signal, prepare)

    def start_generation(self) -> Generation:
        self.number += 1
        gen = Generation(self.number, [Copy() for _ in range(self.settings.multi)],
                         time.monotonic())
        for slot, copy in enumerate(gen.copies):
            self.spawn(gen, copy, slot)
        return gen

    # -- readiness -----------------------------------------------------------

    def copy_ready(self, copy: Copy) -> str:
        if copy.ready_by or not copy.pid:
            return copy.ready_by
        if copy.notify is not None:
            copy.notify.read()
            if copy.notify.ready:
                copy.ready_by = "READY=1 on NOTIFY_SOCKET"
        mode = self.ready_mode
        if not copy.ready_by and mode in ("auto", "proc"):
            if readiness.waits_on(descendants(copy.pid), self.inodes):
                copy.ready_by = "waits on a passed socket, seen in /proc"
        if not copy.ready_by and mode.startswith("delay:"):
            if time.monotonic() - copy.started >= float(mode[6:]):
                copy.ready_by = f"alive after {mode[6:]} s"
        return copy.ready_by

    def check_starting(self) -> None:
        gen = self.starting
        if gen is None:
            return
        if all(self.copy_ready(c) for c in gen.copies):
            self.promote(gen)
        elif time.monotonic() - gen.started > self.settings.ready_timeout:
            if self.serving is None:  # nothing to keep: stopping it would help no one
                for copy in gen.copies:
                    copy.ready_by = copy.ready_by or (
                        f"not seen ready within --ready-timeout {self.settings.ready_timeout:g} "
                        f"s ({self.ready_mode} readiness): taken as serving")
                self.promote(gen)
                return
            self.give_up(gen, f"was not ready within --ready-timeout "
                              f"{self.settings.ready_timeout:g} s ({self.ready_mode} readiness)")

    def promote(self, gen: Generation) -> None:
        ms = (time.monotonic() - gen.started) * 1000
        old = self.serving
        self.starting, self.serving, gen.serving = None, gen, True
        if self.record:
            gen.page = Page(self.record, gen.number, gen.copies[0].pid, self.listeners)
        pids = ", ".join(str(c.pid) for c in gen.copies)
        how = "; ".join(sorted({c.ready_by for c in gen.copies}))
        if old is None:
            log(f"generation {gen.number} serving (pid {pids}; {how})")
            self.notifier.ready(f"generation {gen.number} serving (pid {pids})")
            self.notifier.store(self.fds)
        else:
            self.notifier.ready(f"generation {gen.number} serving (pid {pids}); generation "
                                f"{old.number} drains")
            drain = signals.Signals(self.settings.drain_signal or signals.SIGTERM).name
            log(f"generation {gen.number} (pid {pids}) ready in {ms:.0f} ms ({how})")
            log(f"generation {gen.number} serving; generation {old.number} gets {drain}")
        for copy in gen.copies:
            self.event(gen.number, copy.pid, protocol.EVENT_SERVING, self.listeners)
        if old is not None:
            self.retire(old)

    def retire(self, gen: Generation) -> None:
        gen.serving = False
        gen.stop_at = time.monotonic() + self.settings.drain_timeout
        if gen.page is not None:
            gen.page.set_state(protocol.GEN_DRAINING)
        self.event(gen.number, os.getpid(), protocol.EVENT_DRAINING)
        self.signal(gen, self.settings.drain_signal or signals.SIGTERM)
        self.stopped.append(gen)

    def give_up(self, gen: Generation, why: str) -> None:
        """A generation that did not come to serve: stopped; the old one serves on."""
        self.starting = None
        keeps = (f"generation {self.serving.number} keeps serving" if self.serving
                 else "nothing serves: clients wait in the queue")
        status = "; " + gen.copies[0].notify.status if gen.copies[0].notify and \
            gen.copies[0].notify.status else ""
        log(f"restart failed: generation {gen.number} {why}{status}; {keeps}")
        if self.serving is not None:
            self.notifier.ready(f"restart failed: generation {gen.number} {why}; {keeps}")
        self.event(gen.number, gen.copies[0].pid or os.getpid(), protocol.EVENT_FAILED, why)
        gen.stop_at = time.monotonic() + ROLLBACK_GRACE
        self.signal(gen, signals.SIGTERM)
        if gen.pids:  # copies still to end (one that exited is already reaped)
            self.stopped.append(gen)

    def signal(self, gen: Generation, sig: int) -> None:
        for pid in gen.pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    # -- exits ---------------------------------------------------------------

    def on_exit(self, pid: int, status: int) -> None:
        for gen in [g for g in (self.starting, self.serving, *self.stopped) if g]:
            if pid not in gen.pids:
                continue
            gen.pids.discard(pid)
            copy = next((c for c in gen.copies if c.pid == pid), None)
            if copy is not None:
                copy.pid = 0
                if copy.notify is not None:  # its process is gone: nothing more can come
                    copy.notify.close()
                    copy.notify = None
            if gen is self.starting and copy is not None and not self.stopping:
                how = f"(pid {pid}) {describe_exit(status)} before it was ready"
                if self.serving is None:
                    self.first_failed(gen, copy, how, status)
                else:
                    self.give_up(gen, how)
            elif gen is self.serving and copy is not None and not self.stopping:
                self.serving_exit(gen, copy, pid, status)
            elif not gen.pids and gen in self.stopped:
                self.stopped.remove(gen)
                self.event(gen.number, os.getpid(), protocol.EVENT_EXITED)
                if gen.page is not None:
                    gen.page.remove()
            if self.stopping and gen is self.serving and os.WIFEXITED(status):
                self.status = self.status or os.waitstatus_to_exitcode(status)
            return

    def first_failed(self, gen: Generation, copy: Copy, how: str, status: int) -> None:
        """A start with nothing serving yet exited before it was ready: with --revive
        or --multi it is started again after a delay, else huptime exits with it."""
        if not (self.settings.revive or self.settings.multi > 1):
            log(f"generation {gen.number} {how}; stopping")
            self.status = exit_status(status)
            self.stop()
            return
        self.event(gen.number, os.getpid(), protocol.EVENT_FAILED, how)
        ran = time.monotonic() - copy.started
        copy.delay = BACKOFF_FIRST if ran >= STABLE_AFTER else copy.delay
        log(f"generation {gen.number} {how}; started again in {copy.delay:g} s "
            "(clients wait in the queue)")
        copy.revive_at = time.monotonic() + copy.delay
        copy.delay = min(copy.delay * 2, BACKOFF_MAX)

    def serving_exit(self, gen: Generation, copy: Copy, pid: int, status: int) -> None:
        ran = time.monotonic() - copy.started
        if not (self.settings.revive or self.settings.multi > 1):
            log(f"generation {gen.number} (pid {pid}) {describe_exit(status)}; stopping")
            self.status = exit_status(status)
            self.stop()
            return
        copy.delay = BACKOFF_FIRST if ran >= STABLE_AFTER else copy.delay
        log(f"generation {gen.number} (pid {pid}) {describe_exit(status)} after {ran:.1f} s; "
            f"started again in {copy.delay:g} s (clients wait in the queue)")
        copy.revive_at = time.monotonic() + copy.delay
        copy.delay = min(copy.delay * 2, BACKOFF_MAX)

    def stop(self) -> None:
        if self.stopping:
            return
        self.stopping = True
        self.notifier.stopping()
        for gen in (self.starting, self.serving, *self.stopped):
            if gen is not None:
                for copy in gen.copies:
                    copy.revive_at = None
                self.signal(gen, signals.SIGTERM)

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self.on_exit(pid, status)

    def alive(self) -> bool:
        return any(g and g.pids for g in (self.starting, self.serving, *self.stopped))

    # -- the loop ------------------------------------------------------------

    def due(self) -> float | None:
        now, times = time.monotonic(), []
        if self.starting is not None:
            early, fast, slow = TICKS
            times.append(now + (fast if now - self.starting.started < early else slow))
        for gen in (self.serving, self.starting):
            times += [c.revive_at for c in (gen.copies if gen else []) if c.revive_at is not None]
        times += [g.stop_at for g in self.stopped if g.stop_at is not None]
        return max(0.0, min(times) - now) if times else None

    def on_timers(self) -> None:
        now = time.monotonic()
        for gen in list(self.stopped):
            if gen.stop_at is not None and now >= gen.stop_at:
                if gen.pids:
                    log(f"generation {gen.number} still runs after its time; SIGKILL")
                    self.signal(gen, signals.SIGKILL)
                gen.stop_at = None  # due once: the loop must not wake for it again
        for gen in (self.serving, self.starting):
            for slot, copy in enumerate(gen.copies if gen and not self.stopping else []):
                if copy.revive_at is not None and now >= copy.revive_at:
                    self.spawn(gen, copy, slot)
        self.check_starting()

    def restart(self) -> None:
        if self.stopping:
            return
        if self.starting is not None:
            log(f"restart signal ignored: generation {self.starting.number} is still starting")
            return
        self.starting = self.start_generation()
        self.notifier.reloading(f"restart: generation {self.starting.number} starting")
        log(f"restart: generation {self.starting.number} starting as pid "
            f"{', '.join(str(c.pid) for c in self.starting.copies)}")

    def run(self) -> int:
        wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signals.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
        for sig in (signals.SIGCHLD, signals.SIGTERM, signals.SIGINT, self.settings.signal):
            signals.signal(sig, lambda *_: None)
        self.starting = self.start_generation()
        while self.alive() or any(c.revive_at for g in (self.serving, self.starting) if g
                                  for c in g.copies):
            # Every live copy's NOTIFY_SOCKET is read, so a program that keeps sending
            # (WATCHDOG=1) never blocks on a full queue; only a start's READY=1 counts.
            notify = [c.notify for g in (self.starting, self.serving, *self.stopped) if g
                      for c in g.copies if c.notify]
            ready, _, _ = select.select([wake_r, *notify], [], [], self.due())
            for sock in notify:
                if sock in ready:
                    sock.read()
            if wake_r in ready:
                for sig in os.read(wake_r, 512):
                    if sig in (signals.SIGTERM, signals.SIGINT):
                        log(f"stopping on signal {sig}")
                        self.stop()
                    elif sig == self.settings.signal:
                        self.restart()
            self.reap()
            self.on_timers()
        return self.status


def activate(program: str, command: list[str], env: dict[str, str], settings: Settings,
             sockets: list[tuple[int, str, str]], user: pwd.struct_passwd | None) -> int:
    """Run the program with sockets passed until it is stopped; the exit status."""
    directory = env.pop(protocol.ENV_CONTROL, None)
    pinned = pin_record(directory)
    try:
        return Activation(program, command, env, settings, sockets, directory, user).run()
    finally:
        if pinned is not None:
            pinned.close()
        sys.stderr.flush()
