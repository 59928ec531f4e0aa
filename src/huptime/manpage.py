"""huptime(1), written from the click definitions so the page cannot drift from --help.

    python -m huptime.manpage > docs/huptime.1      (what `make man` does)

A test compares docs/huptime.1 with this output.
"""

from __future__ import annotations

import sys

import click

from huptime import __version__
from huptime.cli import EPILOG, huptime

DESCRIPTION = """\
huptime runs COMMAND so that it can be restarted without losing a connection. A small
library preloaded into the server keeps track of its listening sockets. On the restart
signal (SIGHUP unless --signal) a new copy of the program starts and inherits those
sockets: its own bind() on the same address gets the inherited socket back. In fork mode
the old copy keeps accepting until the new one is ready, then finishes its open
connections and exits; if the new one fails, it is killed and the old one keeps serving.
In exec mode the process finishes its connections and executes itself again under the
same PID while clients wait in the kernel's queue.
"""

SECTIONS = [
    ("EXIT STATUS", """\
Starting a server: 2 for bad usage, 127 for a command not found, 126 for one that is not
executable; otherwise the command's own status. Control commands (--restart, --status,
--stop): 0 done, 1 failed (the reason is printed), 3 no running instance of COMMAND."""),
    ("ENVIRONMENT", """\
XDG_RUNTIME_DIR: where the instance records live (XDG_RUNTIME_DIR/huptime, else
/run/user/UID/huptime, else /tmp/huptime-UID; the directory must be the user's, mode
0700). The variables huptime sets for the shim (HUPTIME_*) are listed in
docs/protocol.md."""),
    ("FILES", """\
libhuptime.so, inside the huptime Python package: the preloaded library.
XDG_RUNTIME_DIR/huptime/PID-*/: one instance record per start (instance.json, the
generations' pages gen-N, the events log)."""),
    ("SEE ALSO", "kill(1), systemd.service(5), docs/protocol.md in the source"),
]


def roff(text: str) -> str:
    """Escape text for roff: backslashes, leading dots and quotes, hyphens."""
    out = []
    for line in text.splitlines():
        line = line.replace("\\", "\\e").replace("-", "\\-")
        if line.startswith((".", "'")):
            line = "\\&" + line
        out.append(line)
    return "\n".join(out)


def option_entries() -> list[tuple[str, str]]:
    ctx = click.Context(huptime, info_name="huptime")
    entries = []
    for param in huptime.get_params(ctx):
        record = param.get_help_record(ctx)
        if record:
            entries.append(record)
    return entries


def render() -> str:
    lines = [
        f'.TH HUPTIME 1 "" "huptime {__version__}" "User Commands"',
        ".SH NAME",
        "huptime \\- zero\\-downtime restarts for unmodified servers",
        ".SH SYNOPSIS",
        ".B huptime",
        "[\\fIOPTIONS\\fR] [\\-\\-] \\fICOMMAND\\fR [\\fIARGS\\fR...]",
        ".br",
        ".B huptime",
        "\\-\\-restart | \\-\\-status | \\-\\-stop [\\fIOPTIONS\\fR] [\\-\\-] [\\fICOMMAND\\fR...]",
        ".SH DESCRIPTION",
        roff(DESCRIPTION),
        ".SH OPTIONS",
    ]
    for names, text in option_entries():
        lines += [".TP", f"\\fB{roff(names)}\\fR", roff(text)]
    lines.append(".SH EXAMPLES")
    lines.append(".nf")
    lines.append(roff(EPILOG.replace("\b\n", "").rstrip()))
    lines.append(".fi")
    for title, body in SECTIONS:
        lines += [f".SH {title}", roff(body)]
    return "\n".join(lines) + "\n"


def main() -> None:
    sys.stdout.write(render())


if __name__ == "__main__":
    main()
