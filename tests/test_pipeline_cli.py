"""python pipeline.py run|scan|status, with help for every command."""

import os

import pytest
from helpers import commands_of, pipeline_cli
from standins.world import World

import pipeline

COMMANDS = commands_of(pipeline.parser())


@pytest.mark.parametrize("command", [[], *([c] for c in COMMANDS)])
def test_every_command_has_help(command):
    result = pipeline_cli(*command, "--help")
    assert result.returncode == 0
    assert "usage: pipeline.py" in result.stdout


def test_help_lists_the_commands_and_exit_codes():
    out = pipeline_cli("--help").stdout
    for word in (*COMMANDS, "NVIDIA_API_KEY", "not configured"):
        assert word in out


def test_run_without_a_key_says_so_and_writes_nothing(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("NVIDIA_API_KEY", "MILESAHEAD_CONFIG")}
    result = pipeline_cli("run", cwd=tmp_path, env=env)
    assert result.returncode == pipeline.EXIT_NOT_CONFIGURED
    assert "no LLM API key" in result.stderr and "NVIDIA_API_KEY" in result.stderr
    assert not (tmp_path / "data").exists()


def test_run_scan_and_status_end_to_end(config, app, tmp_path):
    with World(config) as world:
        path = world.config_file(tmp_path / "pipeline.yaml")
        scan = pipeline_cli("--config", str(path), "-q", "scan")
        assert scan.returncode == 0, scan.stderr
        assert "stories_new: 2" in scan.stdout
        assert world.model.requests == []  # scan calls no model
        run = pipeline_cli("--config", str(path), "-q", "run")
        assert run.returncode == 0, run.stderr
        assert "run 2: ok" in run.stdout and "drafts_written: 2" in run.stdout
        status = pipeline_cli("--config", str(path), "status")
    assert status.returncode == 0
    assert "configured: yes" in status.stdout
    assert "lock: free" in status.stdout
    assert "articles: 2 drafts" in status.stdout
    assert "#2" in status.stdout and "cli: ok" in status.stdout and "scan: ok" in status.stdout
