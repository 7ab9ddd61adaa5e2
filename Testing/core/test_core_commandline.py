"""The shared ending of the console commands: user errors and interrupts become exit codes."""

from __future__ import annotations

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
