"""huptime: zero-downtime restarts for unmodified servers.

The launcher (cli.py, launcher.py) prepares the environment and execs the
server with the shim (libhuptime.so, built from csrc/) preloaded.
"""

__version__ = "0.1.0"
