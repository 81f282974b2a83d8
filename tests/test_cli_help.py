"""Every command line has help that says what each command does."""

import os
import subprocess
import sys

import pytest
from helpers import ROOT, commands_of

import app

APP_COMMANDS = commands_of(app.parser())


def run_help(*args):
    return subprocess.run([sys.executable, *args, "--help"], cwd=ROOT, capture_output=True, text=True)


def test_app_help_lists_every_command():
    result = run_help(os.path.join(ROOT, "app.py"))
    assert result.returncode == 0
    for command in APP_COMMANDS:
        assert command in result.stdout


@pytest.mark.parametrize("command", APP_COMMANDS)
def test_each_app_command_has_help(command):
    result = run_help(os.path.join(ROOT, "app.py"), command)
    assert result.returncode == 0 and "usage:" in result.stdout


def test_hash_password_refuses_passwords_over_72_bytes():
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "app.py"), "hash-password"],
        input="x" * 73 + "\n",
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0 and "72 bytes" in result.stderr


def test_hash_password_prints_a_bcrypt_hash_that_verifies():
    import bcrypt

    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "app.py"), "hash-password"],
        input="correct horse\n",
        capture_output=True,
        text=True,
        check=True,
    )
    hashed = result.stdout.strip()
    assert bcrypt.checkpw(b"correct horse", hashed.encode())
    assert "correct horse" not in result.stdout
