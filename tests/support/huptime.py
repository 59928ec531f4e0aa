"""How tests and benchmarks run huptime: the command, an environment without stale
huptime settings, one control command, `--status --json`.

    done = run_huptime("--restart", "--", *command)
    [instance] = status_json(command)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence

HUPTIME = [sys.executable, "-m", "huptime"]
SETTINGS_PREFIX = "HUPTIME_"


def huptime_settings(env: Mapping[str, str], keep: Sequence[str] = ()) -> list[str]:
    """Names of the HUPTIME_* variables in env, except those in keep."""
    return [name for name in env if name.startswith(SETTINGS_PREFIX) and name not in keep]


def forget_huptime_settings(keep: Sequence[str] = ()) -> None:
    """Drop HUPTIME_* from this process's environment: a stale handoff inherited by the
    test or benchmark run must not leak into the servers it starts."""
    for name in huptime_settings(os.environ, keep):
        del os.environ[name]


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This environment without HUPTIME_*, with unbuffered Python output, plus extra."""
    stale = set(huptime_settings(os.environ))
    env = {k: v for k, v in os.environ.items() if k not in stale}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def run_huptime(*args: str, env: Mapping[str, str] | None = None, cwd: os.PathLike | None = None,
                timeout: float = 60.0) -> subprocess.CompletedProcess:
    """Run `huptime ARGS` to its end; env adds to (or overrides) this environment."""
    return subprocess.run([*HUPTIME, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **env} if env is not None else None, cwd=cwd)


def status_json(command: Sequence[str] = (), check: bool = True) -> list[dict]:
    """The instances `huptime --status --json [-- COMMAND]` reports.

    check: fail the test on a non-zero status; without it, no answer is no instances."""
    done = run_huptime("--status", "--json", *(["--", *command] if command else []))
    if done.returncode != 0:
        assert not check, done.stderr
        return []
    return json.loads(done.stdout)
