"""The shared ending of the console commands: user errors and interrupts become exit codes."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pytest
from LandmarkCoreLib.commandline import EXIT_INTERRUPTED, EXIT_USER_ERROR, run_command
from LandmarkCoreLib.errors import InputError


def test_success_codes_and_reports():
    assert run_command("tool", lambda: None) == 0
    assert run_command("tool", lambda: 3) == 3
    assert run_command("tool", lambda: {"report": 1}) == 0  # e.g. evaluate returns its summary


def test_user_error_is_one_line_naming_the_input(capsys):
    def fail():
        raise InputError("target 'x.nrrd'", "no structure of interest found")

    assert run_command("tool", fail) == EXIT_USER_ERROR
    assert capsys.readouterr().err == "tool: error: target 'x.nrrd': no structure of interest found\n"


def test_interrupt_keeps_saved_work_and_says_so(capsys):
    def interrupted():
        raise KeyboardInterrupt

    assert run_command("tool", interrupted) == EXIT_INTERRUPTED
    assert "last checkpoint" in capsys.readouterr().err


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signal dispositions")
def test_interrupt_reaches_a_command_started_with_sigint_ignored():
    """Like a CLI launched from a background shell job: SIGINT arrives ignored, Cancel must still work."""
    child = textwrap.dedent(
        """
        import sys, time
        from LandmarkCoreLib.commandline import run_command

        def work():
            print("started", flush=True)
            time.sleep(60)

        sys.exit(run_command("tool", work))
        """
    )
    process = subprocess.Popen(
        [sys.executable, "-c", child],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    assert process.stdout.readline().strip() == "started"
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == EXIT_INTERRUPTED, stderr
    assert "interrupted" in stderr
