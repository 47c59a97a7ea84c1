"""The command line: one-line errors with exit 3, --debug adds the traceback, --json is JSON."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from aisre.cli import main


def _run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_bad_path_is_one_line_exit_3(capsys, tmp_path):
    """A path that does not exist gives one error line naming it, and exit code 3."""
    code, out, err = _run(capsys, "investigate", str(tmp_path / "nope"))
    assert code == 3
    assert err.startswith("aisre: error: ") and str(tmp_path / "nope") in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_debug_adds_the_traceback(capsys, tmp_path):
    """--debug prints the traceback before the one-line error."""
    code, _, err = _run(capsys, "--debug", "investigate", str(tmp_path / "nope"))
    assert code == 3 and "Traceback" in err and err.rstrip().splitlines()[-1].startswith("aisre: error: ")


def test_bad_option_is_exit_3(capsys):
    """An unknown option is a usage error: one line, exit 3."""
    code, _, err = _run(capsys, "simulate", "--no-such-option")
    assert code == 3 and err.startswith("aisre: error: ") and "--no-such-option" in err


def test_unknown_method_lists_known(capsys, tmp_path):
    """An unknown ranker names the known ones."""
    from aisre.case import Case, save_case

    save_case(Case(id="c"), tmp_path / "c")
    code, _, err = _run(capsys, "investigate", str(tmp_path / "c"), "--method", "oracle")
    assert code == 3 and "unknown method 'oracle'" in err and "aisre" in err


def test_layout_detection_lists_layouts_tried(capsys, tmp_path):
    """A folder of no known layout names the layouts tried."""
    (tmp_path / "x.txt").write_text("hello")
    code, _, err = _run(capsys, "load", str(tmp_path), "--out", str(tmp_path / "out"))
    assert code == 3 and "matches no known layout; tried: " in err and "case" in err


def test_help_and_version(capsys):
    """--help lists every command of DESIGN.md; --version prints the version; both exit 0."""
    code, out, _ = _run(capsys, "--help")
    assert code == 0
    for command in ("demo", "simulate", "load", "investigate", "timeline", "triage", "plan", "remediate",
                    "audit", "gate", "memory", "postmortem", "benchmark"):
        assert command in out
    code, out, _ = _run(capsys, "--version")
    assert code == 0 and "0.1.0" in out


def test_scorecard_options_are_checked(capsys):
    """Contradictory or malformed scorecard options are one-line usage errors, exit 3."""
    code, _, err = _run(capsys, "benchmark", "scorecard", "--workers", "2", "--scheduler", "tcp://127.0.0.1:1")
    assert code == 3 and "not both" in err
    code, _, err = _run(capsys, "benchmark", "scorecard", "--seeds", "one,two")
    assert code == 3 and "whole numbers" in err


def test_console_script_exit_code(tmp_path):
    """The installed console script returns the same exit code through the process."""
    result = subprocess.run([sys.executable, "-m", "aisre.cli", "investigate", str(tmp_path / "missing")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 3 and result.stderr.startswith("aisre: error:")


def test_postmortem_since_writes_only_cases_closed_since(capsys, tmp_path):
    """--since picks the cases whose window closed at or after the time, and writes their reports."""
    from aisre.case import save_case

    from conftest import build_toy_case

    case = build_toy_case()
    save_case(case, tmp_path / "incidents" / "toy")
    code, out, _ = _run(capsys, "postmortem", str(tmp_path / "incidents"), "--since", str(case.window[1] + 1))
    assert code == 0 and "no case closed since then" in out
    code, out, _ = _run(capsys, "--json", "postmortem", str(tmp_path / "incidents"), "--since",
                        "2023-11-14T00:00:00Z", "--out", str(tmp_path / "reports"))
    doc = json.loads(out)
    assert code == 0 and doc["failures"] == [] and len(doc["written"]) == 1
    assert (tmp_path / "reports" / "toy-cart-cpu" / "postmortem.html").is_file()
