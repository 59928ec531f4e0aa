"""huptime: zero-downtime restarts for unmodified servers.

The launcher (cli.py, launcher.py, supervisor.py for --revive and --multi)
prepares the environment and execs the server with the shim (libhuptime.so,
built from csrc/) preloaded. The control commands (control.py) act on what
record.py finds in the instance records; procfs.py reads /proc for both, and
protocol.py gives every value the Python side shares with the shim, read from
the shim's csrc/protocol.h. manpage.py writes huptime(1) from cli.py.
"""

__version__ = "0.1.0"


class HuptimeError(Exception):
    """A problem to report in one line, with the exit status a shell would use
    (cli.main prints it as "huptime: <message>" and exits with the status)."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status
