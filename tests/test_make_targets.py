"""`make test` runs every lane (what CI runs); `pytest` alone and `make check` run the fast suite;
naming a file runs it, whatever its lane."""

import shlex
import subprocess
import sys

from helpers import ROOT


def pytest_args(target):
    """The arguments `make TARGET` passes to pytest, read from its dry run."""
    dry = subprocess.run(["make", "-n", target], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    line = [line for line in dry.splitlines() if " -m pytest" in line][-1]
    words = shlex.split(line)
    return words[words.index("pytest") + 1 :]


def collected(*args):
    """Test ids pytest would run with ARGS (collected only: nothing runs)."""
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return {line for line in result.stdout.splitlines() if "::" in line}


def test_make_test_runs_every_lane_and_pytest_alone_only_the_fast_ones():
    slow = collected("-m", "vm or browser")
    fast = collected()
    every = collected(*pytest_args("test"))
    assert any(t.startswith("tests/vm/") for t in slow)
    assert any(t.startswith("tests/test_screenshots.py") for t in slow)
    assert fast and not fast & slow
    assert every == fast | slow


def test_make_check_runs_the_fast_suite():
    assert pytest_args("check") == []


def test_naming_a_lanes_file_runs_it():
    assert collected("tests/vm/test_vm_boots.py") == collected("-m", "vm", "tests/vm/test_vm_boots.py") != set()
    assert collected("tests/test_screenshots.py") == collected("-m", "browser", "tests/test_screenshots.py") != set()
