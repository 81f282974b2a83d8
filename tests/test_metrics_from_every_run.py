"""/metrics counts every pipeline run, whichever process ran it, and reports the data as it is."""

import datetime
import os
import subprocess
import sys

import requests
from helpers import ROOT, free_port, wait_until_up
from prometheus_client.parser import text_string_to_metric_families
from standins.world import World

import metrics
import pipeline
import store


def samples(text):
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(scraped, name, **labels):
    return scraped.get((name, tuple(sorted(labels.items()))), 0)


def total(scraped, name, **labels):
    """Sum over every series of `name` whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in scraped.items() if n == name and wanted <= set(ls))


class Server:
    """`app.py serve` in its own process, as the systemd unit runs it."""

    def __init__(self, config_path, cwd):
        self.command = [sys.executable, os.path.join(ROOT, "app.py"), "--config", str(config_path), "serve"]
        self.cwd = cwd
        self.port = free_port()
        self.process = None

    def __enter__(self):
        env = dict(os.environ, MILESAHEAD_RELEASE="metrics-test")
        command = [*self.command, "--port", str(self.port)]
        self.process = subprocess.Popen(
            command, cwd=self.cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
        )
        wait_until_up(f"http://127.0.0.1:{self.port}/healthz", timeout=60)
        return self

    def __exit__(self, *exc):
        self.process.terminate()
        self.process.wait(timeout=20)

    def scrape(self):
        reply = requests.get(f"http://127.0.0.1:{self.port}/metrics", timeout=10)
        assert reply.status_code == 200
        return samples(reply.text)


def test_a_command_line_run_moves_the_running_apps_metrics(config, tmp_path):
    with World(config) as world:
        path = world.config_file(tmp_path / "config.yaml")
        with Server(path, tmp_path) as server:
            before = server.scrape()
            run = subprocess.run(
                [sys.executable, os.path.join(ROOT, "pipeline.py"), "--config", str(path), "-q", "run"],
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert run.returncode == 0, run.stdout + run.stderr
            after = server.scrape()
        # the totals live in the database: a restart (a deploy) keeps them
        with Server(path, tmp_path) as server:
            restarted = server.scrape()

    def moved(name, **labels):
        return total(after, name, **labels) - total(before, name, **labels)

    assert moved("milesahead_pipeline_runs_total", outcome="ok") == 1
    assert moved("milesahead_critic_score_count") == 2  # two stories, each scored once as stored
    assert moved("milesahead_pipeline_duration_seconds_count", stage="total") == 1
    assert moved("milesahead_image_search_total", source="unsplash", outcome="ok") > 0
    assert moved("milesahead_image_scoring_total", phase="vision") > 0
    assert moved("milesahead_image_candidates_count") == 2
    assert value(after, "milesahead_articles", status="draft") == 2
    assert value(after, "milesahead_review_oldest_waiting_seconds") >= 0
    assert value(after, "milesahead_pipeline_last_success_timestamp_seconds") > 0
    assert value(after, "milesahead_pipeline_feeds") == len(config["pipeline"]["feeds"])
    run_samples = {key for key in after if key[0].startswith(("milesahead_pipeline_", "milesahead_image_"))}
    assert {key: restarted[key] for key in run_samples if key in restarted} == {key: after[key] for key in run_samples}


def test_a_run_inside_the_app_is_counted_once(config, world, client):
    before = samples(client.get("/metrics").text)
    pipeline.run(config, trigger="admin")
    after = samples(client.get("/metrics").text)
    assert total(after, "milesahead_pipeline_runs_total") - total(before, "milesahead_pipeline_runs_total") == 1
    assert total(after, "milesahead_critic_score_count") - total(before, "milesahead_critic_score_count") == 2


def test_every_metric_a_run_moves_is_one_the_app_exports_from_the_database(config, world):
    """A metric added to the pipeline but not to metrics.RUN_METRICS would count only in its own process."""

    def values():
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in metrics.REGISTRY.collect()
            for s in family.samples
            if not s.name.endswith("_created")
        }

    before = values()
    pipeline.run(config, trigger="cli")
    changed = {name for (name, labels), v in values().items() if v != before.get((name, labels))}
    exported = {name for name, _ in metrics.run_samples()}
    exported |= {f.name + s for m in metrics.RUN_METRICS for f in m.collect() for s in metrics.SAMPLE_SUFFIXES}
    assert changed and changed <= exported, changed - exported


def test_a_killed_run_keeps_what_it_counted_up_to_its_last_stage(config, world, conn, client):
    run = pipeline.Run.start(conn, "cli")
    with run.stage("fetch"):
        metrics.IMAGE_SEARCHES.labels(source="openverse", outcome="error").inc(3)
    # the process dies here: no finish(); the next run marks the row interrupted
    scraped = samples(client.get("/metrics").text)
    assert value(scraped, "milesahead_image_search_total", source="openverse", outcome="error") == 3
    pipeline.run(config)
    scraped = samples(client.get("/metrics").text)
    assert value(scraped, "milesahead_pipeline_runs_total", outcome="interrupted") == 1


def test_drafts_waiting_and_the_oldest_wait_are_read_from_the_database(conn, client):
    store.insert_article(conn, title="Fresh draft", status="draft")
    old = store.insert_article(conn, title="Old draft", status="draft")
    store.insert_article(conn, title="Published", status="approved")
    two_days_ago = (datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=2)).isoformat()
    with store.transaction(conn):
        conn.execute("UPDATE articles SET created_at = ? WHERE id = ?", (two_days_ago, old))
    scraped = samples(client.get("/metrics").text)
    assert value(scraped, "milesahead_articles", status="draft") == 2
    assert value(scraped, "milesahead_articles", status="approved") == 1
    assert 2 * 86400 <= value(scraped, "milesahead_review_oldest_waiting_seconds") < 2 * 86400 + 600


def test_the_newest_verified_backup_and_the_copies_kept_are_reported(config, tmp_path, client):
    backups = tmp_path / "backups"
    config["backup"]["dir"] = str(backups)
    (backups / "daily").mkdir(parents=True)
    (backups / "manual").mkdir()
    for name, mtime in [
        ("milesahead-20261130T031700Z.db.gz", 1_796_000_000),
        ("milesahead-20261201.db.gz", 1_796_086_400),
    ]:
        (backups / "daily" / name).write_bytes(b"x")
        os.utime(backups / "daily" / name, (mtime, mtime))
    (backups / "manual" / ".milesahead-20261201.db.tmp.gz").write_bytes(b"half")  # a copy still being written
    scraped = samples(client.get("/metrics").text)
    assert value(scraped, "milesahead_backup_last_success_timestamp_seconds") == 1_796_086_400
    assert value(scraped, "milesahead_backup_files", kind="daily") == 2
    assert value(scraped, "milesahead_backup_files", kind="manual") == 0


def test_no_backup_at_all_reads_as_the_beginning_of_time(config, tmp_path, client):
    config["backup"]["dir"] = str(tmp_path / "nothing-here")
    scraped = samples(client.get("/metrics").text)
    assert scraped[("milesahead_backup_last_success_timestamp_seconds", ())] == 0  # an alert's "never"


def test_metrics_still_answer_when_the_database_is_unusable(config, client):
    os.remove(config["database"]["path"])
    os.makedirs(config["database"]["path"])
    page = client.get("/metrics")
    scraped = samples(page.text)
    assert value(scraped, "milesahead_healthy") == 0
    assert total(scraped, "milesahead_build_info") == 1


def test_known_series_start_at_zero_so_a_first_failure_shows_as_an_increase(client):
    scraped = samples(client.get("/metrics").text)
    assert scraped[("milesahead_image_search_total", (("outcome", "error"), ("source", "pixabay")))] == 0
    assert scraped[("milesahead_pipeline_runs_total", (("outcome", "failed"),))] == 0
    assert scraped[("milesahead_pipeline_duration_seconds_count", (("stage", "image"),))] == 0
    assert scraped[("milesahead_critic_score_count", ())] == 0
