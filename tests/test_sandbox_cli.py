"""`python -m infra sandbox` refuses plainly, before doing anything, where it cannot run.

Real runs of the command line: with a PATH that has no QEMU, and as a user who is not
root. Nothing may be created and no VM started. The sandbox itself, against a real VM,
is in tests/vm/test_replica_lane.py, where it is the new host.
"""

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from infra.__main__ import parser

ROOT = Path(__file__).resolve().parent.parent
NOBODY = 65534  # Debian's nobody and nogroup


def sandbox(*args, env=None, python=sys.executable, cwd=ROOT, **kwargs):
    return subprocess.run(
        [python, "-m", "infra", "sandbox", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        **kwargs,
    )


def test_up_without_qemu_names_the_packages_and_does_nothing(tmp_path):
    state = tmp_path / "sandbox"
    no_qemu = tmp_path / "bin"  # a PATH where nothing is installed
    no_qemu.mkdir()
    env = os.environ | {"PATH": str(no_qemu), "MILESAHEAD_SANDBOX_DIR": str(state)}
    result = sandbox("up", env=env)
    assert result.returncode != 0
    said = result.stderr
    assert "nothing was done" in said
    assert "qemu-system-x86_64, from the Debian package qemu-system-x86" in said
    assert "qemu-img, from the Debian package qemu-utils" in said
    assert "make system-deps" in said and "sudo apt-get install" in said
    assert "Traceback" not in said and result.stdout == ""
    assert not state.exists()


@pytest.fixture
def readable_copy():
    """The toolkit copied where any user can read it (a checkout under /root is not)."""
    top = Path(tempfile.mkdtemp(prefix="milesahead-sandbox-cli-"))
    os.chmod(top, 0o755)
    shutil.copytree(ROOT / "infra", top / "infra", ignore=shutil.ignore_patterns("__pycache__"))
    for path in top.rglob("*"):
        os.chmod(path, os.stat(path).st_mode | stat.S_IROTH | (stat.S_IXOTH if path.is_dir() else 0))
    yield top
    shutil.rmtree(top)


def python_for_nobody():
    """A Python that nobody may run: this one's interpreter, else Debian's (this one may
    live under /root, as pyenv's does). The command line is standard library only until
    it has refused, so no venv is needed."""
    as_nobody = {"user": NOBODY, "group": NOBODY, "extra_groups": []}
    for python in (os.path.realpath(sys.executable), "/usr/bin/python3"):
        if os.path.exists(python):
            try:
                subprocess.run([python, "-c", "pass"], cwd="/", check=True, capture_output=True, **as_nobody)
            except (OSError, subprocess.CalledProcessError):
                continue
            return python
    pytest.fail("no Python that the user nobody may run (install python3: scripts/system-deps.sh)")


def test_up_as_an_ordinary_user_says_it_needs_root(readable_copy):
    state = readable_copy / "state"
    env = os.environ | {"MILESAHEAD_SANDBOX_DIR": str(state), "HOME": str(readable_copy)}
    if os.geteuid() == 0:  # as CI runs: the command as nobody
        python = python_for_nobody()
        result = sandbox("up", env=env, python=python, cwd=readable_copy, user=NOBODY, group=NOBODY, extra_groups=[])
    else:
        result = sandbox("up", env=env, cwd=readable_copy)
    assert result.returncode != 0
    assert "nothing was done" in result.stderr
    assert "root (or sudo)" in result.stderr and "sudo make sandbox" in result.stderr
    assert "Traceback" not in result.stderr
    assert not state.exists()


def test_without_a_sandbox_status_env_and_down_say_so(tmp_path):
    env = os.environ | {"MILESAHEAD_SANDBOX_DIR": str(tmp_path / "none")}
    status = sandbox("status", env=env)
    assert status.returncode == 1 and status.stdout.startswith("no sandbox")
    printed = sandbox("env", env=env)
    # Nothing for eval to run, and the reason on stderr.
    assert printed.returncode == 1 and printed.stdout == "" and "no sandbox runs" in printed.stderr
    down = sandbox("down", env=env)
    assert down.returncode == 0 and down.stdout.strip() == "no sandbox"
    assert not (tmp_path / "none").exists()


def test_up_offers_only_the_guests_it_can_build():
    result = sandbox("up", "--arch", "sparc64")
    assert result.returncode == 2 and "invalid choice: 'sparc64'" in result.stderr


@pytest.mark.parametrize("command", ["up", "env", "status", "down"])
def test_every_sandbox_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit:
        parser().parse_args(["sandbox", command, "--help"])
    assert exit.value.code == 0
    assert "sandbox" in capsys.readouterr().out


def test_the_help_says_env_prints_the_test_secrets(capsys):
    with pytest.raises(SystemExit):
        parser().parse_args(["sandbox", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "The output of `env` contains the sandbox's test secrets" in out
    assert "need root (or sudo) and QEMU; `make system-deps` installs the packages" in out
