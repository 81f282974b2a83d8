"""Inventory from the environment, and the CLI's help for every command."""

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import commands_of

from infra import hosts as inventory
from infra.__main__ import parser

ROOT = Path(__file__).resolve().parent.parent

COMMANDS = commands_of(parser())


def test_one_host_with_key_contents(tmp_path):
    key = "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----"
    hosts = inventory.hosts_from_env({"OCI_HOST": "203.0.113.7", "OCI_USER": "ubuntu", "OCI_SSH_KEY": key})
    [(name, data)] = hosts
    assert name == "203.0.113.7" and data["ssh_user"] == "ubuntu"
    path = data["ssh_key"]
    assert Path(path).read_text() == key + "\n"  # the newline CI secrets tend to lose
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_several_hosts_share_user_port_and_key_path():
    hosts = inventory.hosts_from_env(
        {"OCI_HOST": "a.example, b.example", "OCI_SSH_PORT": "2222", "OCI_SSH_KEY_PATH": "~/.ssh/id"}
    )
    assert [h for h, _ in hosts] == ["a.example", "b.example"]
    assert all(d["ssh_port"] == 2222 and d["ssh_key"].endswith("/.ssh/id") for _, d in hosts)
    assert all(d["ssh_user"] == "ubuntu" and d["ssh_strict_host_key_checking"] == "accept-new" for _, d in hosts)


def test_missing_host_and_bad_port_are_named():
    with pytest.raises(inventory.InventoryError, match="OCI_HOST"):
        inventory.hosts_from_env({})
    with pytest.raises(inventory.InventoryError, match="OCI_SSH_PORT"):
        inventory.hosts_from_env({"OCI_HOST": "h", "OCI_SSH_PORT": "ssh"})


def test_the_cli_without_a_host_names_the_variable():
    env = {k: v for k, v in os.environ.items() if not k.startswith("OCI_")}
    result = subprocess.run(
        [sys.executable, "-m", "infra", "status"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0 and "OCI_HOST" in result.stderr


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit:
        parser().parse_args([command, "--help"])
    assert exit.value.code == 0
    assert len(capsys.readouterr().out.splitlines()) >= 3


@pytest.mark.parametrize("command", ["setup", "deploy", "rollback", "restore"])
def test_changing_commands_have_a_dry_run(command):
    args = [command, "--dry"] + (["backup.db.gz"] if command == "restore" else [])
    assert parser().parse_args(args).dry is True


def test_every_command_is_documented():
    doc = (ROOT / "docs" / "toolkit.md").read_text()
    for command in COMMANDS:
        assert f"python -m infra {command}" in doc
