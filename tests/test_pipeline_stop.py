"""SIGTERM and SIGINT end a run within seconds, marked `interrupted`, even mid-download or mid-reply."""

import signal

import pytest
from conftest import wait_for
from test_pipeline_lock import start_cli_run

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
