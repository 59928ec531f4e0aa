"""--revive, --multi and PID 1: stay as the program's parent, hold its listeners, start
it again when it exits, run several copies on the same listeners.

As the first process of a PID namespace (a container's entrypoint) huptime always
supervises, --revive or not: in fork mode the first generation's leader exits at the
first restart, and the end of a namespace's PID 1 kills everything in it. There the
supervisor stays PID 1 for the container's life, reaps the orphans the kernel gives
it, passes SIGTERM/SIGINT on as a graceful stop, and without --revive exits with the
program's status when the program ends on its own.

The supervisor starts the program with one end of a seqpacket socketpair in
HUPTIME_SUPERVISOR_FD. Each generation's leader, once ready, sends "serving N PID SLOT"
with its listeners attached; the supervisor keeps those descriptors open, so while
no copy of the program runs, clients wait in the listeners' accept queues instead of
being refused. When the serving leader exits on its own, a new copy starts with the
held listeners (HUPTIME_FDS), after a delay that doubles (0.1 s to 30 s) while copies
keep exiting within 10 s of their start. With --multi=N, N copies (HUPTIME_SLOT
0..N-1) share the same listeners, hence one accept queue; copies 1.. start once copy 0
reported its listeners, a copy that exits is replaced, and the restart signal goes to
every copy, so the pool rolls together. The supervisor is a child subreaper, so
fork-mode generations stay its descendants. SIGTERM/SIGINT stop the program and the
supervisor; the restart signal is passed to the serving leader. If the supervisor
dies, even by SIGKILL, every generation sees end of file on its link and stops.
"""

from __future__ import annotations

import array
import mmap
import os
import select
import signal as signals
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from dataclasses import dataclass
from typing import NoReturn

from huptime import protocol
from huptime.launcher import Settings
from huptime.procfs import become_subreaper, children
from huptime.notify import Notifier
from huptime.record import RECORD, events_size, read_events

BACKOFF_FIRST = 0.1
BACKOFF_MAX = 30.0
STABLE_AFTER = 10.0  # a copy that ran this long was not crash-looping
RELOAD_LOOK = 0.05   # how often the record's events are read while a restart is on
FD_SIZE = array.array("i").itemsize
RESET_SIGNALS = ("SIGPIPE", "SIGXFSZ")  # Python ignores these; the program must not


def log(message: str) -> None:
    print(f"huptime[{os.getpid()}]: {message}", file=sys.stderr, flush=True)


def exit_status(status: int) -> int:
    """A wait status as a shell reports it: the code, or 128 + the signal."""
    return os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)


def describe_exit(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"was killed by signal {os.WTERMSIG(status)}"
    return f"exited with status {os.waitstatus_to_exitcode(status)}"


def exec_child(program: str, command: list[str], env: dict[str, str], restart_signal: int,
               prepare: Callable[[], None]) -> NoReturn:
    """In a child just forked by a supervisor: the signals as the program expects
    them (default actions, nothing blocked), prepare(), exec; never returns (127 and
    one line if the exec or prepare fails)."""
    try:
        signals.set_wakeup_fd(-1)
        for name in ("SIGCHLD", "SIGTERM", "SIGINT", *RESET_SIGNALS):
            signals.signal(getattr(signals, name), signals.SIG_DFL)
        signals.signal(restart_signal, signals.SIG_DFL)
        signals.pthread_sigmask(signals.SIG_SETMASK, [])
        prepare()
        os.execve(program, command, env)
    except BaseException as exc:  # noqa: BLE001 - nothing may escape a forked child
        try:
            log(f"cannot start {command[0]}: {exc}")
        finally:
            os._exit(127)


@dataclass
class Slot:
    """One copy of the program: --multi runs several, --revive one."""

    number: int | None          # HUPTIME_SLOT, None for a lone copy
    leader: int = 0             # PID of its serving (or starting) leader
    generation: int = 0
    started: float = 0.0
    delay: float = BACKOFF_FIRST
    revive_at: float | None = None
    serving: bool = False               # its leader reported serving
    await_until: float | None = None    # its leader exited 0 unready: a daemon's parent?
    exited_pid: int = 0

    def log_prefix(self) -> str:
        return "--revive:" if self.number is None else f"--multi: copy {self.number},"


class Supervisor:
    def __init__(self, program: str, command: list[str], env: dict[str, str],
                 settings: Settings) -> None:
        self.program = program
        self.command = command
        self.env = env  # the program's environment (launcher.build_env), for every copy
        self.settings = settings
        self.restart_signal = settings.signal
        self.listeners: list[int] = []
        copies = settings.multi
        self.slots = [Slot(i if copies > 1 else None) for i in range(copies)]
        self.stopping = False
        self.status = 0
        self.notifier = Notifier.from_environment(self.env, shim=True)  # systemd's
        self.record = env.get(protocol.ENV_CONTROL)
        self.announced = False
        self.reload: dict[int | None, int] | None = None  # a restart: generations it began with
        self.reload_events = 0

    # -- starting a copy -----------------------------------------------------

    def start_copy(self, slot: Slot, generation: int) -> None:
        env = dict(self.env)
        env[protocol.ENV_GENERATION] = str(generation)
        if self.listeners:  # handed over like the shim's own handoff does
            env[protocol.ENV_FDS] = ",".join(map(str, self.listeners))
            env[protocol.ENV_PROTOCOL] = str(protocol.HUPTIME_PROTOCOL_VERSION)
        if slot.number is not None:
            env[protocol.ENV_SLOT] = str(slot.number)
        pid = os.fork()
        if pid == 0:  # the child: only exec from here
            def prepare() -> None:
                for fd in self.listeners:
                    os.set_inheritable(fd, True)
                env[protocol.ENV_PID] = str(os.getpid())
            exec_child(self.program, self.command, env, self.restart_signal, prepare)
        slot.leader = pid
        slot.generation = generation
        slot.started = time.monotonic()
        slot.revive_at = None
        slot.serving = False

    def debug(self, message: str) -> None:
        if self.settings.debug:
            log(message)

    def leaders(self) -> list[int]:
        return [slot.leader for slot in self.slots if slot.leader]

    # -- events --------------------------------------------------------------

    def on_reports(self, link: socket.socket) -> None:
        """Every queued report."""
        space = socket.CMSG_SPACE(protocol.HANDOFF_MAX_FDS * FD_SIZE)
        while True:
            try:  # not socket.recv_fds: Python 3.11's ignores its flags
                message, ancillary, _flags, _addr = link.recvmsg(
                    256, space, socket.MSG_CMSG_CLOEXEC | socket.MSG_DONTWAIT)
            except OSError:
                return
            fds = array.array("i")
            for level, kind, data in ancillary:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds.frombytes(data[:len(data) - len(data) % FD_SIZE])
            self.on_report(message, list(fds))

    def on_report(self, message: bytes, fds: list[int]) -> None:
        """A leader's "serving N PID SLOT" (SLOT -1 for a lone copy), with its
        listeners attached: the descriptors to hold from now on."""
        words = message.decode(errors="replace").split()
        numbers = [int(w) for w in words[1:] if w.lstrip("-").isdigit()]
        if len(words) != 4 or words[0] != protocol.REPORT_SERVING or len(numbers) != 3:
            for fd in fds:
                os.close(fd)
            return
        generation, pid, number = numbers
        self.debug(f"report: generation {generation} pid {pid} slot {number}, {len(fds)} listeners")
        slot = next((s for s in self.slots if s.number == (None if number < 0 else number)), None)
        old, self.listeners = self.listeners, fds
        for fd in old:
            os.close(fd)
        if slot is not None:
            if pid != slot.leader:
                slot.leader, slot.generation, slot.started = pid, generation, time.monotonic()
            slot.serving, slot.await_until = True, None
        self.tell_serving()
        # The other copies start once there are listeners to share.
        for other in self.slots:
            if (not other.leader and other.revive_at is None and other.await_until is None
                    and not self.stopping):
                self.start_copy(other, generation)

    # -- sd_notify -----------------------------------------------------------

    def tell_serving(self) -> None:
        """READY=1 once every copy serves, and again once a restart has rolled them all."""
        serving = [s for s in self.slots if s.serving]
        if len(serving) < len(self.slots):
            return
        what = ", ".join(f"generation {s.generation} (pid {s.leader})" for s in serving)
        if not self.announced:
            self.announced = True
            self.notifier.ready(f"serving: {what}")
            self.notifier.store(self.listeners)
        elif self.reload is not None and all(
                s.generation > self.reload.get(s.number, 0) for s in serving):
            self.reload = None
            self.notifier.ready(f"serving: {what}")

    def begin_reload(self) -> None:
        self.reload = {s.number: s.generation for s in self.slots}
        self.reload_events = events_size(Path(self.record)) if self.record else 0
        self.notifier.reloading("restart: new generations starting")

    def check_reload(self) -> None:
        """A restart that failed (the shim's `failed` event): READY=1 with the reason."""
        if self.reload is None or not self.record:
            return
        events, self.reload_events = read_events(Path(self.record), self.reload_events)
        for number, _pid, word, rest in events:
            if word == protocol.EVENT_FAILED:
                self.reload = None
                self.notifier.ready(f"restart failed: generation {number} {rest}")
                return

    def on_exit(self, pid: int, status: int) -> None:
        slot = next((s for s in self.slots if s.leader == pid), None)
        self.debug(f"exit of pid {pid}; copies' leaders {self.leaders()}")
        if slot is None:
            return  # a retired generation, or an orphaned worker
        slot.leader = 0
        ran = time.monotonic() - slot.started
        if self.stopping:
            if os.WIFEXITED(status):
                self.status = self.status or os.waitstatus_to_exitcode(status)
            return
        if not slot.serving and os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
            # A daemonizing parent exits 0 at once; its child takes over and reports.
            wait = self.settings.ready_timeout
            slot.await_until, slot.exited_pid = time.monotonic() + wait, pid
            self.debug(f"generation {slot.generation} (pid {pid}) exited with status 0 before "
                       f"it was ready; waiting up to {wait:g} s for a daemonized child to report")
            return
        self.schedule_revive(slot, pid, describe_exit(status), ran, status)

    def schedule_revive(self, slot: Slot, pid: int, how: str, ran: float, status: int = 0) -> None:
        slot.await_until = None
        if not (self.settings.revive or self.settings.multi > 1):  # PID 1: the program's end
            log(f"generation {slot.generation} (pid {pid}) {how} after {ran:.1f} s; stopping "
                "(huptime is PID 1 and stays until the program ends; --revive starts it again)")
            self.status = exit_status(status)
            self.stopping = True
            self.send(signals.SIGTERM, everyone=True)
            return
        slot.delay = BACKOFF_FIRST if ran >= STABLE_AFTER else slot.delay
        log(f"{slot.log_prefix()} generation {slot.generation} (pid {pid}) {how} "
            f"after {ran:.1f} s; starting generation {slot.generation + 1} in {slot.delay:g} s"
            + ("" if self.listeners else " (no listener held yet: clients are refused meanwhile)"))
        slot.revive_at = time.monotonic() + slot.delay
        slot.delay = min(slot.delay * 2, BACKOFF_MAX)

    def reap(self, link: socket.socket) -> bool:
        """Reap every exited child; False once there are none left. The reports
        are read again before each exit is judged: a successor reports before its
        predecessor learns it is ready, so its report is queued by now."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return False
            if pid == 0:
                return True
            self.on_reports(link)
            self.on_exit(pid, status)

    def send(self, sig: int, everyone: bool = False) -> None:
        """Signal every copy's leader; with everyone, every child too (old
        generations still draining, anything re-parented here)."""
        for pid in sorted(set(self.leaders()) | (children() if everyone else set())):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    # -- the loop ------------------------------------------------------------

    def run(self, link: socket.socket) -> int:
        wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signals.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
        for sig in (signals.SIGCHLD, signals.SIGTERM, signals.SIGINT, self.restart_signal):
            signals.signal(sig, lambda *_: None)
        self.start_copy(self.slots[0], 1)
        while True:
            due = [t for s in self.slots for t in (s.revive_at, s.await_until) if t is not None]
            if self.reload is not None:
                due.append(time.monotonic() + RELOAD_LOOK)
            timeout = max(0.0, min(due) - time.monotonic()) if due else None
            ready, _, _ = select.select([link, wake_r], [], [], timeout)
            self.on_reports(link)
            if wake_r in ready:
                for sig in os.read(wake_r, 512):
                    if sig in (signals.SIGTERM, signals.SIGINT) and not self.stopping:
                        log(f"stopping on signal {sig}")
                        self.stopping = True
                        self.notifier.stopping()
                        for slot in self.slots:
                            slot.revive_at = slot.await_until = None
                        self.send(signals.SIGTERM, everyone=True)
                    elif sig == self.restart_signal and not self.stopping:
                        self.send(self.restart_signal)
                        if self.reload is None:
                            self.begin_reload()
            self.check_reload()
            alive = self.reap(link)
            if self.stopping and not alive:
                return self.status
            for slot in self.slots:
                now = time.monotonic()
                if slot.await_until is not None and now >= slot.await_until and not self.stopping:
                    self.schedule_revive(slot, slot.exited_pid, "exited with status 0 and no "
                                         "daemonized child reported serving", now - slot.started)
                if slot.revive_at is not None and now >= slot.revive_at:
                    self.start_copy(slot, slot.generation + 1)


def supervise(program: str, command: list[str], env: dict[str, str], settings: Settings) -> int:
    """Run the program under a supervisor until it is stopped; returns the exit status.
    env is the program's (launcher.build_env), settings what it was built from."""
    why = become_subreaper()
    if why:
        log(f"cannot become a child subreaper: {why}; "
            "generations started by restarts are not revived")
    record = pin_record(env.get(protocol.ENV_CONTROL))
    link, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    child_end.set_inheritable(True)
    env = dict(env)
    env[protocol.ENV_SUPERVISOR_FD] = str(child_end.fileno())
    try:
        return Supervisor(program, command, env, settings).run(link)
    finally:
        if record is not None:
            record.close()


def pin_record(directory: str | None) -> mmap.mmap | None:
    """Map the instance record, so `huptime --stop` can tell this process is its
    supervisor (/proc/PID/maps names the file), like the shim's pages do."""
    if not directory:
        return None
    try:
        with open(os.path.join(directory, RECORD), "rb") as f:
            return mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
    except (OSError, ValueError):
        return None
