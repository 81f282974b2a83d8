"""One run at a time, a lock that survives a crash, and a killed run that leaves nothing half-written."""

import json
import os

import pytest
from helpers import start_cli_run, wait_for

import pipeline

REQUESTS_PER_STORY = 10  # write, critique, revise, critique, details, take, image metadata, 3 x vision


def test_only_one_lock_holder_even_within_one_process(config, tmp_path):
    path = pipeline.lock_path(config)
    first, second = pipeline.RunLock(path), pipeline.RunLock(path)
    assert first.acquire()
    assert not second.acquire()
    assert second.holder() == os.getpid()
    first.release()
    assert second.acquire()
    second.release()
    assert pipeline.RunLock(path).holder() is None


def test_a_run_in_progress_refuses_another(config, world, conn):
    lock = pipeline.RunLock(pipeline.lock_path(config))
    assert lock.acquire()
    try:
        with pytest.raises(pipeline.RunInProgress, match=f"process {os.getpid()}"):
            pipeline.run(config)
        started, message = pipeline.trigger_run(config)
        assert not started and "already in progress" in message
    finally:
        lock.release()
    assert conn.execute("SELECT COUNT(*) FROM pipeline_runs").fetchone()[0] == 0


def test_a_killed_run_leaves_no_half_article_and_the_next_run_recovers(config, world, conn, tmp_path):
    world.model.hold_from = REQUESTS_PER_STORY + 1  # the second story's first request never returns
    config_file = world.config_file(tmp_path / "pipeline.yaml")
    process = start_cli_run(config_file, tmp_path)
    try:
        wait_for(lambda: len(world.model.tasks) > REQUESTS_PER_STORY)
        assert pipeline.RunLock(pipeline.lock_path(config)).holder() == process.pid
        assert conn.execute("SELECT COUNT(*) FROM articles").fetchone()[0] == 1  # story one is complete
        process.kill()  # SIGKILL: no cleanup of any kind
        process.wait(10)
    finally:
        if process.poll() is None:
            process.kill()
    assert pipeline.RunLock(pipeline.lock_path(config)).holder() is None  # the kernel dropped the lock
    assert conn.execute("SELECT COUNT(*) FROM articles").fetchone()[0] == 1  # and nothing half-written
    assert conn.execute("SELECT status FROM pipeline_runs").fetchone()[0] == "running"

    world.model.hold_from = None
    world.model.released.set()
    run_id = pipeline.run(config)
    runs = {r["id"]: dict(r) for r in conn.execute("SELECT * FROM pipeline_runs")}
    killed = next(r for r in runs.values() if r["id"] != run_id)
    assert killed["status"] == "interrupted" and "stopped before it finished" in killed["errors"]
    assert runs[run_id]["status"] == "ok"
    counts = conn.execute("SELECT cluster_id, COUNT(*) FROM articles GROUP BY cluster_id").fetchall()
    assert len(counts) == 2 and all(n == 1 for _, n in counts)  # each story exactly once
    assert json.loads(runs[run_id]["counts"])["drafts_written"] == 1


def test_a_crash_between_storing_and_marking_does_not_write_twice(config, world, conn):
    pipeline.run(config)
    # as if the process died right after insert_article, before its cluster was marked
    conn.execute("UPDATE clusters SET status = 'new', article_id = NULL")
    asked = len(world.model.requests)
    pipeline.run(config)
    assert conn.execute("SELECT COUNT(*) FROM articles").fetchone()[0] == 2
    assert conn.execute("SELECT COUNT(*) FROM clusters WHERE status = 'generated'").fetchone()[0] == 2
    assert len(world.model.requests) == asked


def test_sigterm_marks_the_run_interrupted(config, world, conn, tmp_path):
    world.model.hold_from = 2
    config_file = world.config_file(tmp_path / "pipeline.yaml")
    process = start_cli_run(config_file, tmp_path)
    wait_for(lambda: len(world.model.tasks) >= 2)
    process.terminate()
    assert process.wait(10) == 143
    row = conn.execute("SELECT status, errors FROM pipeline_runs").fetchone()
    assert row["status"] == "interrupted" and "stopped by a signal" in row["errors"]
    assert conn.execute("SELECT COUNT(*) FROM articles").fetchone()[0] == 0
