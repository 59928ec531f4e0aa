"""The command line: parse and validate, then hand over to the launcher."""

from __future__ import annotations

import os
import signal as signals
import sys

import click

from huptime import HuptimeError, __version__, control, protocol
from huptime.launcher import Settings, launch

EPILOG = """\b
Examples:
  huptime python3 -m http.server 8000
  kill -HUP <pid>                  # restart: new generation, no lost client
  huptime --exec nginx -g 'daemon off;'
  huptime --fork --debug ./server 8080             # the shim's decisions on stderr
  huptime --signal USR2 --ready-timeout 10 ./server --port 8080
  huptime --unlink /run/app.pid ./app --pidfile /run/app.pid
  huptime --wait --drain-timeout 600 ./job-server   # old jobs run to the end
  huptime --drain-idle 5 ./app-server              # idle keep-alives closed after 5 s
  huptime --drain-signal QUIT nginx -g 'daemon off;'   # nginx drains its own way
  huptime --check 'nginx -t' nginx -g 'daemon off;'    # no restart into a bad config
  huptime --backlog 1024 python3 -m http.server 8000   # listen queue of 1024, not 5
  huptime --probe-http /healthz ./app-server       # new version must answer 2xx first
  huptime --probe-timeout 5 --probe 'curl -fsS http://${PROBE_ADDR}/' ./app-server
  huptime --revive ./flaky-server                  # started again if it exits
  huptime --multi 4 python3 -m http.server 8000    # 4 copies, one accept queue
  huptime --restart python3 -m http.server 8000    # waits: serving or rolled back
  huptime --status                                 # every instance you started
  huptime --status --json python3 -m http.server 8000
  huptime --stop --timeout 30 python3 -m http.server 8000
  huptime --listen :8080 ./static-go-server       # sockets passed, no preload
  huptime --listen 127.0.0.1:80 --user www-data --ready notify ./server

\b
Fork mode (default): the restart starts a new process; the old one keeps
accepting until the new one is ready, then finishes its open connections
and exits. If the new one exits or is not ready within --ready-timeout,
it is killed and the old one keeps serving. With --probe, the new one first
serves private twins of its sockets only, and gets the shared ones once
the probe passed on them (else it is rolled back).
Exec mode (--exec): same PID; the process stops accepting, finishes its
connections, and execs itself. Clients wait in the kernel's queue.
Listen mode (--listen): for programs the preload cannot enter (static Go or
musl binaries, set-user-ID programs; huptime refuses to start those without
it). huptime holds the sockets and passes them; a restart starts the new
version on them and, once it is ready (--ready), sends the old one
--drain-signal (TERM) and SIGKILL after --drain-timeout.

\b
Control commands find the servers huptime started for COMMAND (as typed at
start, or the same program found on PATH) through a record kept in
$XDG_RUNTIME_DIR/huptime (else /run/user/UID/huptime, else /tmp/huptime-UID),
and act only on your processes that run huptime's shim for that record.
Exit status: 0 done, 1 failed (the reason is printed), 3 no such instance.
""".replace("${PROBE_ADDR}", "$" + protocol.ENV_PROBE_ADDR)


def parse_signal(_ctx: click.Context, _param: click.Parameter, value: str) -> int:
    """HUP, SIGHUP, hup or a number; never KILL or STOP."""
    name = value.strip().upper()
    try:
        number = int(name) if name.isdigit() else int(signals.Signals[
            name if name.startswith("SIG") else "SIG" + name])
    except (ValueError, KeyError):
        raise click.BadParameter(f"unknown signal {value!r} (try HUP, USR1, USR2)") from None
    if number in (signals.SIGKILL, signals.SIGSTOP) or not 1 <= number < signals.NSIG:
        raise click.BadParameter(f"signal {value!r} cannot be caught")
    return number


def absolute_paths(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> tuple[str, ...]:
    """--unlink FILE...: made absolute now, since the program may change directory;
    at most the shim's MAX_UNLINK (asked only when there are files: it loads cffi)."""
    if values and len(values) > protocol.MAX_UNLINK:
        raise click.BadParameter(f"at most {protocol.MAX_UNLINK} files, got {len(values)}")
    paths = []
    for value in values:
        if not value or "\n" in value or "\0" in value:
            raise click.BadParameter(f"not a usable file name: {value!r}")
        paths.append(os.path.abspath(value))
    return tuple(paths)


def positive_seconds(_ctx: click.Context, param: click.Parameter, value: float) -> float:
    if not value > 0 or value > 365 * 86400:
        raise click.BadParameter(f"must be a number of seconds above 0, got {value}")
    return value


def parse_listen(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> tuple[str, ...]:
    from huptime.endpoints import EndpointError, parse
    for value in values:
        try:
            parse(value)
        except EndpointError as exc:
            raise click.BadParameter(str(exc)) from None
    return values


def parse_ready(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    """auto, notify, proc or delay:SECONDS."""
    if value in ("auto", "notify", "proc"):
        return value
    if value.startswith("delay:"):
        try:
            seconds = float(value[6:])
        except ValueError:
            seconds = -1.0
        if 0 < seconds <= 3600:
            return f"delay:{seconds:g}"
    raise click.BadParameter(f"{value!r}: expected auto, notify, proc or delay:SECONDS "
                             "(0 < SECONDS <= 3600)")


def seconds_or_zero(_ctx: click.Context, param: click.Parameter, value: float) -> float:
    if not value >= 0 or value > 365 * 86400:
        raise click.BadParameter(f"must be a number of seconds, 0 or more, got {value}")
    return value


def check_probe(probe: str | None, probe_http: str | None, probe_timeout: float | None,
                exec_mode: bool, listen: bool) -> None:
    """Refuse --probe, --probe-http and --probe-timeout where they cannot work."""
    if probe is not None and probe_http is not None:
        raise click.UsageError("--probe and --probe-http exclude each other")
    if probe is None and probe_http is None:
        if probe_timeout is not None:
            raise click.UsageError("--probe-timeout goes with --probe or --probe-http")
        return
    name = "--probe" if probe is not None else "--probe-http"
    if exec_mode:
        raise click.UsageError(f"{name} needs fork mode: in exec mode no second generation "
                               "runs beside the first to be probed")
    if listen:
        raise click.UsageError(f"{name} does not apply to --listen: the program gets the "
                               "shared sockets at start, with no private twins to probe")
    if probe is not None and (not probe.strip() or "\0" in probe):
        raise click.UsageError("--probe needs a shell command")
    if probe_http is not None and (not probe_http.startswith("/") or any(
            c.isspace() or c == "\0" for c in probe_http)
            or len(probe_http) >= protocol.PROBE_HTTP_PATH_MAX):
        raise click.UsageError(f"--probe-http needs a path such as /healthz, not {probe_http!r}")


@click.command(
    context_settings={"help_option_names": ["-h", "--help"], "allow_interspersed_args": False},
    epilog=EPILOG,
)
@click.option("--exec", "exec_mode", is_flag=True, help="Restart in place (same PID) instead of forking a new generation.")
@click.option("--fork", "fork_mode", is_flag=True, help="Restart by starting a new generation (the default).")
@click.option("--signal", "signal_number", default="HUP", show_default=True, metavar="NAME",
              callback=parse_signal, help="Signal that triggers a restart (e.g. USR2 for servers that use HUP themselves).")
@click.option("--ready-timeout", type=float, default=60.0, show_default=True, metavar="SECONDS",
              callback=positive_seconds, help="Fork mode: roll back if the new generation is not accepting by then.")
@click.option("--drain-timeout", type=float, default=300.0, show_default=True, metavar="SECONDS",
              callback=positive_seconds, help="Longest wait for open connections to finish before SIGTERM (SIGKILL 5 s later).")
@click.option("--drain-idle", type=float, default=1.0, show_default=True, metavar="SECONDS",
              callback=seconds_or_zero,
              help="Once an old generation stops accepting, close connections quiet that long "
                   "after the server's last answer (idle keep-alives), so their clients "
                   "reconnect to the new one. 0: leave them open.")
@click.option("--drain-signal", "drain_signal", default=None, metavar="NAME",
              callback=lambda ctx, param, value: value and parse_signal(ctx, param, value),
              help="Fork mode: once the new generation serves and the old one stopped "
                   "accepting, send NAME to the old one's leader, for programs with a graceful "
                   "stop of their own (nginx QUIT). Still bounded by --drain-timeout.")
@click.option("--backlog", type=click.IntRange(0, 65535), default=protocol.BACKLOG_DEFAULT,
              show_default=True, metavar="N",
              help="Make every listen queue at least N long (the kernel caps it at "
                   "net.core.somaxconn), so clients that connect while a restart switches "
                   "generations wait in the queue instead of losing their SYN. 0: keep the "
                   "program's own value.")
@click.option("--check", "check", default=None, metavar="CMD",
              help="Run the shell command CMD before each restart (from the start directory, "
                   "with the start environment, within --ready-timeout); if it fails, the "
                   "restart is refused and the running version keeps serving.")
@click.option("--probe", "probe", default=None, metavar="CMD",
              help="Fork mode: start each new version on private twins of its listening "
                   "sockets (loopback, a port the kernel picks) while clients stay with the "
                   f"old one, and run the shell command CMD with {protocol.ENV_PROBE_ADDR} "
                   f"(the first twin, host:port) and {protocol.ENV_PROBE_ADDRS} (every "
                   "listener, shared=private); exit 0 moves the shared sockets in under the "
                   "new version, anything else rolls back. E.g. "
                   f"'curl -fsS http://${protocol.ENV_PROBE_ADDR}/healthz'.")
@click.option("--probe-http", "probe_http", default=None, metavar="PATH",
              help="As --probe, with huptime's own check instead of a command: GET PATH "
                   "(HTTP/1.0) on the first twin must answer 2xx. No curl needed, and no "
                   "process started.")
@click.option("--probe-timeout", type=click.FloatRange(min=0.001), default=None,
              metavar="SECONDS",
              help="Longest wait for the probe; then it is killed and the restart rolled back "
                   "[default: --ready-timeout].")
@click.option("--wait", "wait", is_flag=True,
              help="Before an old generation exits, let the program's own child processes "
                   "finish (up to --drain-timeout) instead of ending them.")
@click.option("--unlink", "unlink", multiple=True, metavar="FILE", callback=absolute_paths,
              help="Remove FILE when a restart begins, e.g. a pid file the program refuses to "
                   "start over (fork mode puts it back if the new generation fails). Repeatable.")
@click.option("--revive", is_flag=True,
              help="When the program exits on its own (crash or clean exit), start it again; "
                   "its listeners stay open meanwhile, so clients wait instead of being refused. "
                   "Delays double from 0.1 s to 30 s while it keeps exiting within 10 s.")
@click.option("--multi", type=click.IntRange(1, 256), default=1, metavar="N",
              help="Run N copies of the program on the same listening sockets (one accept "
                   "queue). A copy that exits is replaced (as with --revive); a restart rolls "
                   "all copies together.")
@click.option("--listen", "listen", multiple=True, metavar="ADDR", callback=parse_listen,
              help="Bind ADDR yourself and pass the socket to the program the systemd way "
                   "(fd 3.., LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES) instead of preloading the "
                   "shim: for static (Go, musl) and set-user-ID programs. ADDR: 127.0.0.1:8080, "
                   "[::1]:8080, :8080, unix:/PATH, unix:@NAME, NAME=ADDR. Repeatable.")
@click.option("--ready", "ready", default="auto", show_default=True, metavar="HOW",
              callback=parse_ready,
              help="--listen: when a new generation is ready: notify (READY=1 on its "
                   "NOTIFY_SOCKET), proc (a thread waits on a passed socket, seen in /proc), "
                   "delay:SECONDS (alive that long), auto (notify or proc, whichever first).")
@click.option("--user", "user", default=None, metavar="USER[:GROUP]",
              help="--listen, as root: bind first (ports below 1024), then run the program "
                   "as USER with its groups.")
@click.option("--debug", is_flag=True, help="PID-tagged debug lines from the shim on stderr.")
@click.option("--restart", "do_restart", is_flag=True,
              help="Restart the running COMMAND and wait for the outcome: exit 0 once the new "
                   "generation serves, 1 with the reason if it was rolled back.")
@click.option("--status", "do_status", is_flag=True,
              help="Show each running instance (of COMMAND, or all): PID, mode, generation, "
                   "listeners, open connections, draining generations.")
@click.option("--stop", "do_stop", is_flag=True,
              help="Stop the running COMMAND: SIGTERM, SIGKILL after --timeout; waits until gone.")
@click.option("--timeout", type=float, default=None, metavar="SECONDS",
              help="--stop: seconds between SIGTERM and SIGKILL [default: 10]. --restart: longest "
                   "wait for the outcome [default: the instance's --ready-timeout + 5, plus "
                   "--drain-timeout in exec mode].")
@click.option("--json", "as_json", is_flag=True, help="--status: print JSON (a list of instances).")
@click.version_option(__version__, "--version", prog_name="huptime")
@click.argument("command", nargs=-1, type=click.UNPROCESSED, metavar="[--] COMMAND [ARGS]...")
@click.pass_context
def huptime(ctx: click.Context, exec_mode: bool, fork_mode: bool, signal_number: int,
            ready_timeout: float, drain_timeout: float, drain_idle: float,
            drain_signal: int | None, backlog: int, check: str | None, probe: str | None,
            probe_http: str | None, probe_timeout: float | None, wait: bool,
            unlink: tuple[str, ...],
            revive: bool, multi: int, listen: tuple[str, ...], ready: str, user: str | None,
            debug: bool, do_restart: bool, do_status: bool, do_stop: bool,
            timeout: float | None, as_json: bool, command: tuple[str, ...]) -> None:
    """Run COMMAND so that it can be restarted without losing a connection.

    Send the restart signal (SIGHUP unless --signal) to the server's PID, or to
    all of its processes: the listening sockets are handed to the new version,
    in-flight requests finish, and no client sees a refused or reset connection.
    """
    actions = [name for name, on in (("--restart", do_restart), ("--status", do_status),
                                     ("--stop", do_stop)) if on]
    if actions:
        run_control(ctx, actions, timeout, as_json, list(command))
        return
    for name, given in (("--timeout", timeout is not None), ("--json", as_json)):
        if given:
            raise click.UsageError(f"{name} goes with --restart, --status or --stop")
    if not command:
        raise click.UsageError("missing COMMAND (usage: huptime [OPTIONS] [--] COMMAND [ARGS]...)")
    if exec_mode and fork_mode:
        raise click.UsageError("--exec and --fork exclude each other")
    if drain_signal is not None and exec_mode:
        raise click.UsageError("--drain-signal needs fork mode: in exec mode the process "
                               "that drains is the one that execs the new version")
    if drain_signal is not None and drain_signal == signal_number:
        raise click.UsageError("--drain-signal must differ from the restart signal (--signal)")
    if check is not None and (not check.strip() or "\0" in check):
        raise click.UsageError("--check needs a shell command")
    check_probe(probe, probe_http, probe_timeout, exec_mode, bool(listen))
    if listen:
        for option in ("exec_mode", "check", "wait", "unlink", "drain_idle"):
            if ctx.get_parameter_source(option) != click.core.ParameterSource.DEFAULT:
                name = next(p.opts[0] for p in ctx.command.params if p.name == option)
                raise click.UsageError(f"{name} does not apply to --listen: the program runs "
                                       "without the shim")
    else:
        for name, given in (("--ready", ctx.get_parameter_source("ready")
                             != click.core.ParameterSource.DEFAULT), ("--user", user is not None)):
            if given:
                raise click.UsageError(f"{name} goes with --listen")
    settings = Settings(
        mode="exec" if exec_mode else "fork",
        signal=signal_number,
        ready_timeout=ready_timeout,
        drain_timeout=drain_timeout,
        drain_idle=drain_idle,
        drain_signal=drain_signal or 0,
        backlog=backlog,
        check=check or "",
        probe=probe or "",
        probe_http=probe_http or "",
        probe_timeout=probe_timeout or 0.0,
        debug=debug,
        unlink=unlink,
        wait=wait,
        revive=revive,
        multi=multi,
        listen=listen,
        ready=ready,
        user=user or "",
    )
    launch(list(command), settings)


# Every other option (but --version and --help) applies to starting a server.
CONTROL_OPTIONS = ("do_restart", "do_status", "do_stop", "timeout", "as_json")


def run_control(ctx: click.Context, actions: list[str], timeout: float | None, as_json: bool,
                command: list[str]) -> None:
    """--restart, --status, --stop: act on running instances, print the outcome."""
    if len(actions) > 1:
        raise click.UsageError(f"{' and '.join(actions)} exclude each other")
    action = actions[0]
    for option in ctx.command.params:
        if (isinstance(option, click.Option) and not option.is_eager
                and option.name not in CONTROL_OPTIONS
                and ctx.get_parameter_source(option.name) != click.core.ParameterSource.DEFAULT):
            raise click.UsageError(f"{option.opts[0]} applies to starting a server, not to {action}")
    if as_json and action != "--status":
        raise click.UsageError("--json goes with --status")
    if timeout is not None and (action == "--status" or not 0 < timeout <= 365 * 86400):
        raise click.UsageError("--timeout needs --restart or --stop and a number of seconds above 0")
    if not command and action != "--status":
        raise click.UsageError(f"{action} needs the COMMAND the server was started with")
    if action == "--status":
        click.echo(control.status(command, as_json))
        return
    failed = []
    for inst in control.find(command):
        serving = inst.serving()
        name = f"{' '.join(inst.command)} (pid {serving.pid if serving else '?'})"
        try:
            if action == "--restart":
                click.echo(f"restarted {name}: {control.restart(inst, timeout)}")
            else:
                click.echo(f"stopped {name}: {control.stop(inst, 10.0 if timeout is None else timeout)}")
        except HuptimeError as exc:  # this instance only: the others are still acted on
            click.echo(f"huptime: {name}: {exc}", err=True)
            failed.append(exc.status)
    if failed:
        sys.exit(max(failed))


def main(argv: list[str] | None = None) -> None:
    """Entry point: click errors and huptime's own become one line and a status."""
    try:
        huptime.main(args=argv, prog_name="huptime", standalone_mode=False)
    except click.UsageError as exc:
        click.echo(f"huptime: {exc.format_message()}", err=True)
        sys.exit(2)
    except click.ClickException as exc:
        click.echo(f"huptime: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        sys.exit(130)
    except HuptimeError as exc:
        click.echo(f"huptime: {exc}", err=True)
        sys.exit(exc.status)
    sys.exit(0)
