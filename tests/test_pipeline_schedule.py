"""Runs started from inside the web process: the admin's trigger_run and the interval schedule."""

from helpers import finished_runs, wait_for

import pipeline


def wait_for_runs(conn, count):
    wait_for(lambda: finished_runs(conn) >= count, what=f"{count} finished runs")


def test_trigger_run_starts_a_background_run_and_refuses_a_second(config, world, conn):
    world.model.hold_from = 1
    started, message = pipeline.trigger_run(config, trigger="admin")
    assert started and message.startswith("Pipeline run started")
    started, message = pipeline.trigger_run(config, trigger="admin")
    assert not started and "already in progress" in message
    world.model.released.set()
    wait_for_runs(conn, 1)
    row = conn.execute("SELECT trigger, status FROM pipeline_runs").fetchone()
    assert tuple(row) == ("admin", "ok")
    assert conn.execute("SELECT COUNT(*) FROM articles WHERE status = 'draft'").fetchone()[0] == 2
    # released when done: just after the row is saved, on the run's own thread
    wait_for(lambda: pipeline.RunLock(pipeline.lock_path(config)).holder() is None, what="the lock released")


def test_schedule_is_off_by_default(config):
    assert config["pipeline"]["schedule_minutes"] == 0
    assert pipeline.start_scheduler(config) is None


def test_schedule_runs_the_pipeline_every_interval(config, world, conn):
    config["pipeline"]["schedule_minutes"] = 0.005  # 0.3 s
    scheduler = pipeline.start_scheduler(config)
    try:
        wait_for_runs(conn, 2)
    finally:
        scheduler.stop()
    triggers = {r[0] for r in conn.execute("SELECT trigger FROM pipeline_runs")}
    assert triggers == {"schedule"}
    assert conn.execute("SELECT COUNT(*) FROM articles").fetchone()[0] == 2  # the second run found nothing new


def test_schedule_without_a_key_says_so_once_and_does_nothing(config, world, conn, caplog):
    config["llm"]["api_key"] = ""
    scheduler = pipeline.Scheduler(config, 3600)
    scheduler.tick()
    scheduler.tick()
    said = [r for r in caplog.records if "not configured" in r.getMessage()]
    assert len(said) == 1 and "NVIDIA_API_KEY" in said[0].getMessage()
    assert conn.execute("SELECT COUNT(*) FROM pipeline_runs").fetchone()[0] == 0
