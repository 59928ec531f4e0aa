"""Helpers the tests and the benchmarks share, one job a module:

- wait.py: wait_for, the one bounded polling loop;
- huptime.py: the huptime command, an environment without stale HUPTIME_* settings,
  one control-command runner and `--status --json`;
- servers.py: the catalogue of servers (tests/servers/, http.server, nginx) and their commands;
- build.py: the C test server's build, free ports;
- served.py: Served, a command under huptime followed through the shim's log lines,
  started by pytest-xprocess (tests) or subprocess.Popen (benchmarks);
- proc.py: processes and sockets as the kernel sees them (psutil, /proc), the subreaper,
  ending every descendant by PID;
- process.py: WatchedProcess, a plain child whose output is read line by line;
- load.py: the HTTP load client that counts every kind of failure.
"""
