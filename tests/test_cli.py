"""The launcher's command line: help that teaches, one-line errors, shell exit codes."""

from __future__ import annotations

import pytest

from support.huptime import run_huptime as run


def test_help_teaches():
    done = run("--help")
    assert done.returncode == 0
    for text in ("--exec", "--signal", "--ready-timeout", "--drain-timeout", "--unlink", "--wait",
                 "--debug", "kill -HUP", "Examples:"):
        assert text in done.stdout


def test_every_option_has_a_help_example_and_a_readme_entry():
    from pathlib import Path

    import click

    from huptime.cli import huptime

    options = [p.opts[0] for p in huptime.params
               if isinstance(p, click.Option) and p.opts[0] not in ("--version", "-h")]
    examples = [line for line in run("--help").stdout.splitlines()
                if line.strip().startswith("huptime ")]
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    for option in options:
        assert any(option in line for line in examples), f"no example of {option} in --help"
        assert f"`{option}" in readme, f"README does not describe {option}"


def test_version():
    done = run("--version")
    assert done.returncode == 0 and done.stdout.startswith("huptime, version ")


@pytest.mark.parametrize("args,status,message", [
    ((), 2, "missing COMMAND"),
    (("--bogus", "true"), 2, "No such option"),
    (("--signal", "NOPE", "true"), 2, "unknown signal 'NOPE'"),
    (("--signal", "KILL", "true"), 2, "cannot be caught"),
    (("--ready-timeout", "0", "true"), 2, "above 0"),
    (("--drain-timeout", "-5", "true"), 2, "above 0"),
    (("--ready-timeout", "soon", "true"), 2, "not a valid float"),
    (("--exec", "--fork", "true"), 2, "exclude each other"),
    (("--unlink", "", "true"), 2, "not a usable file name"),
    (("--unlink", "a\nb", "true"), 2, "not a usable file name"),
    (tuple(x for i in range(17) for x in ("--unlink", f"f{i}")) + ("true",), 2, "at most 16"),
    (("no-such-command-here",), 127, "command not found"),
    (("{plain_file}",), 126, "permission denied"),
    (("/tmp",), 126, "permission denied"),
])
def test_bad_input_is_one_line_and_a_status(args, status, message, tmp_path):
    plain_file = tmp_path / "notes.txt"
    plain_file.write_text("not a program\n")
    done = run(*[a.format(plain_file=plain_file) for a in args])
    assert done.returncode == status
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("huptime: ") and message in lines[0], done.stderr


def test_command_runs_with_its_own_arguments_and_status():
    done = run("--", "sh", "-c", 'echo "$HUPTIME_MODE $HUPTIME_GENERATION $1"; exit 3', "sh", "--exec")
    assert done.returncode == 3
    assert done.stdout == "fork 1 --exec\n"


def test_options_reach_the_shim_settings():
    done = run("--exec", "--signal", "usr2", "--ready-timeout", "1.5", "--drain-timeout", "2",
               "sh", "-c", 'echo "$HUPTIME_MODE $HUPTIME_SIGNAL $HUPTIME_READY_TIMEOUT_MS '
               '$HUPTIME_DRAIN_TIMEOUT_MS $HUPTIME_PID $$"')
    mode, sig, ready, drain, pid, shell_pid = done.stdout.split()
    assert (mode, sig, ready, drain) == ("exec", "12", "1500", "2000")
    assert pid == shell_pid, "the shim is active in the exec'd command itself"


def test_stale_handoff_in_the_callers_environment_is_dropped():
    done = run("sh", "-c", 'echo "[$HUPTIME_FDS][$HUPTIME_READY_FD][$HUPTIME_PENDING]"',
               env={"HUPTIME_FDS": "3", "HUPTIME_READY_FD": "4", "HUPTIME_PENDING": "1"})
    assert done.stdout == "[][][]\n"


def test_unlink_paths_are_absolute_one_per_line(tmp_path):
    """--unlink FILE and --unlink=FILE, repeatable; relative to where huptime started."""
    done = run("--unlink", "run/app.pid", f"--unlink={tmp_path}/b.sock",
               "sh", "-c", 'printf "%s" "$HUPTIME_UNLINK"', cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n") == [f"{tmp_path}/run/app.pid", f"{tmp_path}/b.sock"]
    assert "HUPTIME_UNLINK" not in run("sh", "-c", "env", env={"HUPTIME_UNLINK": "/x"}).stdout
