"""SIGTERM and SIGINT end a run within seconds, marked `interrupted`, even mid-download or mid-reply."""

import os
import signal
import subprocess
import sys

import pytest
import requests
from helpers import ROOT, free_port, start_cli_run, wait_for, wait_until_up

import pipeline

FIRST_VISION_REQUEST = 8  # write, critique, revise, critique, details, take, image metadata, then vision


def image_downloads(world):
    return [r for s in world.images.servers.values() for r in s.requests if r["path"].startswith("/img/")]


def stop_and_wait(process, signum):
    """Send the signal; the run must be gone well within systemd's stop timeout (90 s)."""
    process.send_signal(signum)
    try:
        return process.wait(30)
    finally:
        if process.poll() is None:
            process.kill()


def run_status(conn):
    return conn.execute("SELECT status, errors FROM pipeline_runs").fetchone()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_ends_a_run_stuck_on_a_dripping_image_host(config, world, conn, tmp_path, signum):
    for server in world.images.servers.values():
        server.photos = [dict(p, kind="drip") for p in server.photos]  # 64 bytes a second, no Content-Length
    config["images"].update(timeout_seconds=600, budget_seconds=3600)  # only the signal can end it soon
    process = start_cli_run(world.config_file(tmp_path / "pipeline.yaml"), tmp_path)
    wait_for(lambda: len(image_downloads(world)) >= 3, timeout=60, what="downloads in flight")
    assert stop_and_wait(process, signum) == 128 + signum
    row = run_status(conn)
    assert row["status"] == "interrupted" and signal.Signals(signum).name in row["errors"]
    assert pipeline.RunLock(pipeline.lock_path(config)).holder() is None


def test_sigterm_ends_a_run_waiting_on_a_vision_reply_in_a_worker_thread(config, world, conn, tmp_path):
    world.model.hold_from = FIRST_VISION_REQUEST  # the vision calls never answer
    config["llm"].update(timeout_seconds=600)
    process = start_cli_run(world.config_file(tmp_path / "pipeline.yaml"), tmp_path)
    wait_for(lambda: len(world.model.tasks) >= FIRST_VISION_REQUEST, timeout=60, what="a vision call in flight")
    assert stop_and_wait(process, signal.SIGTERM) == 143
    assert run_status(conn)["status"] == "interrupted"
    assert conn.execute("SELECT COUNT(*) FROM articles").fetchone()[0] == 0  # nothing half-written


def test_stopping_the_web_app_ends_its_run_as_interrupted(config, world, conn, tmp_path):
    """systemd's stop of milesahead.service while a desk-started run waits on the model."""
    world.model.hold_from = 1  # the run's first model call never answers
    config["llm"].update(timeout_seconds=600)
    config["admin"]["api_token"] = "t0ken-" + "b" * 40
    port = free_port()
    command = [sys.executable, os.path.join(ROOT, "app.py"), "--config", str(world.config_file(tmp_path / "c.yaml"))]
    with open(tmp_path / "serve.log", "w") as log:
        server = subprocess.Popen([*command, "serve", "--port", str(port)], cwd=tmp_path, stdout=log, stderr=log)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_up(base + "/healthz", timeout=60)
        started = requests.post(
            base + "/api/admin/runs", json={}, headers={"Authorization": f"Bearer {config['admin']['api_token']}"}
        )
        assert started.status_code == 202, started.text
        wait_for(lambda: len(world.model.tasks) >= 1, timeout=60, what="the run's first model call")
        assert stop_and_wait(server, signal.SIGTERM) == -signal.SIGTERM  # still a plain SIGTERM death
    finally:
        if server.poll() is None:
            server.kill()
    row = run_status(conn)
    assert row["status"] == "interrupted" and "shutting down" in row["errors"]
