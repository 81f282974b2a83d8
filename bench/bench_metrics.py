"""The cost of one /metrics scrape on a database a few years old.

/metrics reads the run totals, the articles by status, the oldest wait and the last good
run from the database, and lists backup.dir, on every scrape (Alloy's is every 60 s).
This builds a temp database with --articles articles (a tenth waiting for the editor,
three events each) and --runs finished runs that each counted a typical run's samples,
a backup dir as the rotation leaves it, and times the scrape in-process (WebTest, no
network), reporting the median and the slowest of --scrapes, and the CPU time per scrape
(which moves far less than wall time when other work shares the machine).

    .venv/bin/python bench/bench_metrics.py [--articles 5000] [--runs 8760] [--scrapes 50]
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import webtest  # noqa: E402

import app as milesahead  # noqa: E402
import config as configuration  # noqa: E402
import metrics  # noqa: E402
import store  # noqa: E402


def build(tmp, articles, runs):
    config = configuration.load_config(None)
    config["database"]["path"] = os.path.join(tmp, "milesahead.db")
    config["backup"]["dir"] = os.path.join(tmp, "backups")
    for kind, count in (("daily", 7), ("weekly", 4), ("pre-deploy", 5), ("manual", 5)):
        os.makedirs(os.path.join(tmp, "backups", kind))
        for n in range(count):
            open(os.path.join(tmp, "backups", kind, f"milesahead-2026{n:04d}.db.gz"), "wb").close()
    app = milesahead.create_app(config)
    conn = store.connect(config["database"]["path"])
    now = store.now()
    with store.transaction(conn):
        for n in range(articles):
            status = "draft" if n % 10 == 0 else "approved"
            conn.execute(
                "INSERT INTO articles (slug, status, title, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
                (f"a-{n}", status, f"Article {n}", now, now),
            )
        conn.execute(
            "INSERT INTO article_events (article_id, actor, action, to_status, created_at)"
            " SELECT id, 'pipeline', 'write', status, created_at FROM articles, (SELECT 1 UNION SELECT 2 UNION SELECT 3)"
        )
        conn.executemany(
            "INSERT INTO pipeline_runs (trigger, status, started_at, finished_at) VALUES ('cli', 'ok', ?, ?)",
            [(now, now)] * runs,
        )
    # a typical run's samples, counted `runs` times: metric_totals holds one row per series
    before = metrics.run_samples()
    for source in ("unsplash", "pexels", "pixabay", "openverse", "wikimedia"):
        metrics.IMAGE_SEARCHES.labels(source=source, outcome="ok").inc(6)
    for stage in ("fetch", "cluster", "generate", "image", "feedback", "total"):
        metrics.PIPELINE_DURATION.labels(stage=stage).observe(42)
    metrics.CRITIC_SCORE.observe(8)
    one_run = metrics.counted_since(before)
    with store.transaction(conn):
        store.add_metric_totals(conn, {key: value * runs for key, value in one_run.items()})
    rows = conn.execute("SELECT COUNT(*) FROM metric_totals").fetchone()[0]
    conn.close()
    return webtest.TestApp(app), rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=8760, help="a year of hourly runs")
    parser.add_argument("--scrapes", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        client, rows = build(tmp, args.articles, args.runs)
        client.get("/metrics")
        times, cpu = [], []
        for _ in range(args.scrapes):
            started, started_cpu = time.perf_counter(), time.process_time()
            page = client.get("/metrics")
            times.append(time.perf_counter() - started)
            cpu.append(time.process_time() - started_cpu)
    print(f"{args.articles} articles ({args.articles // 10} waiting), {args.runs} runs, {rows} metric_totals rows")
    print(f"/metrics: {len(page.body)} bytes; {args.scrapes} scrapes: median {statistics.median(times) * 1000:.1f} ms,")
    print(f"  slowest {max(times) * 1000:.1f} ms; CPU per scrape median {statistics.median(cpu) * 1000:.1f} ms")
    print("  (Alloy scrapes every 60 s)")


if __name__ == "__main__":
    main()
