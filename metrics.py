"""Prometheus metrics shared by the web app and the pipeline (one registry per process).

Names follow Prometheus conventions: the `milesahead_` prefix, base units,
`_total` on counters. /metrics serves them; Caddy never exposes it.

What a pipeline run counts (RUN_METRICS) must reach the app's /metrics whichever
process ran it: the web app's schedule, the desk's "Run now", or `pipeline.py run`
from cron or an operator. So a run adds what it counted to the `metric_totals`
table in the same transaction that saves its row (`counted_since`), and /metrics
exports those totals instead of this process's own values. The totals live with
the data: they survive restarts and deploys, need no shared directory, and count a
run as it goes (at each stage), so a killed run keeps what it had saved.

Everything else /metrics shows about the data (articles waiting for the editor,
the newest backup, the last good run) is read when Prometheus scrapes
(`scrape_families`), so it is true whoever changed it.
"""

import datetime
import glob
import json
import os
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics_core import Metric

REGISTRY = CollectorRegistry()

BUILD_INFO = Gauge(
    "milesahead_build_info", "The running release; always 1.", ["release", "schema_version"], registry=REGISTRY
)
HTTP_REQUESTS = Counter(
    "milesahead_http_requests_total",
    "HTTP requests by route pattern and status.",
    ["route", "status"],
    registry=REGISTRY,
)
HTTP_DURATION = Histogram(
    "milesahead_http_request_duration_seconds", "Time to produce a response.", ["route"], registry=REGISTRY
)
LOGIN_FAILURES = Counter(
    "milesahead_admin_login_failures_total", "Failed admin logins, throttled or not.", ["reason"], registry=REGISTRY
)
CRITIC_SCORE = Histogram(
    "milesahead_critic_score",
    "Critic scores (1-10) of generated articles.",
    buckets=(1, 2, 3, 4, 5, 6, 7, 8, 9, 10),
    registry=REGISTRY,
)
IMAGE_SEARCHES = Counter(
    "milesahead_image_search_total", "Image searches by source and outcome.", ["source", "outcome"], registry=REGISTRY
)
IMAGE_SCORING = Counter(
    "milesahead_image_scoring_total",
    "Image candidates scored, by phase (text, vision) and outcome.",
    ["phase", "outcome"],
    registry=REGISTRY,
)
IMAGE_CANDIDATES = Histogram(
    "milesahead_image_candidates",
    "Image candidates found per article.",
    buckets=(0, 1, 3, 5, 10, 15),
    registry=REGISTRY,
)
PIPELINE_DURATION = Histogram(
    "milesahead_pipeline_duration_seconds",
    "Pipeline stage durations.",
    ["stage"],
    buckets=(0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 600, 1800),
    registry=REGISTRY,
)
CALL_FAILURES = Counter(
    "milesahead_pipeline_call_failures_total",
    "Failed outside calls in pipeline runs, by service (feed, an image source, image hosts, a model role)"
    " and outcome (rate_limited, server_error, refused, api_error, timeout, connection, bad_reply, other).",
    ["service", "outcome"],
    registry=REGISTRY,
)
PIPELINE_RUNS = Counter("milesahead_pipeline_runs_total", "Pipeline runs by outcome.", ["outcome"], registry=REGISTRY)
PAGES_WRITTEN = Counter(
    "milesahead_published_pages_written_total",
    "Reader pages written to public/ because they changed.",
    registry=REGISTRY,
)
PUBLISH_FAILURES = Counter(
    "milesahead_publish_failures_total", "Publishes that stopped before replacing any page.", registry=REGISTRY
)
PUBLISH_DURATION = Histogram(
    "milesahead_publish_duration_seconds",
    "Time to re-render and write a batch of reader pages.",
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60),
    registry=REGISTRY,
)


def _start_at_zero():
    """Create the series known today at 0, as Prometheus advises: increase() and rate() then
    see the first image search that ever fails, which a series born at 1 would hide. A value
    not listed here (a new outcome, say) still appears the first time it is counted."""
    for source in ("unsplash", "pexels", "pixabay", "openverse", "wikimedia"):
        for outcome in ("ok", "empty", "error", "skipped"):
            IMAGE_SEARCHES.labels(source=source, outcome=outcome)
    for outcome in ("kept", "dropped", "unscored", "error"):
        IMAGE_SCORING.labels(phase="text", outcome=outcome)
    for outcome in ("above_floor", "below_floor", "bad_image", "error", "timeout"):
        IMAGE_SCORING.labels(phase="vision", outcome=outcome)
    for outcome in ("ok", "partial", "failed", "interrupted"):
        PIPELINE_RUNS.labels(outcome=outcome)
    for stage in ("fetch", "cluster", "generate", "image", "feedback", "total"):
        PIPELINE_DURATION.labels(stage=stage)


_start_at_zero()

# What a pipeline run counts; exported from metric_totals, never from this process.
# Counters and histograms only (their values add up across runs and processes).
RUN_METRICS = (
    CRITIC_SCORE,
    IMAGE_SEARCHES,
    IMAGE_SCORING,
    IMAGE_CANDIDATES,
    PIPELINE_DURATION,
    PIPELINE_RUNS,
    CALL_FAILURES,
)
SAMPLE_SUFFIXES = ("_total", "_bucket", "_count", "_sum")
RUN_NAMES = {family.name for metric in RUN_METRICS for family in metric.collect()}

# backup.sh's kinds (the directories under backup.dir), and pre-restore from `infra restore`.
BACKUP_KINDS = ("daily", "weekly", "pre-deploy", "manual", "pre-restore")


def set_build_info(release, schema_version):
    BUILD_INFO.clear()
    BUILD_INFO.labels(release=release, schema_version=str(schema_version)).set(1)


# --- What runs counted -------------------------------------------------------


def run_samples():
    """This process's run metrics now: {(sample name, labels as sorted tuples): value}."""
    values = {}
    for metric in RUN_METRICS:
        for family in metric.collect():
            for sample in family.samples:
                if sample.name.endswith(SAMPLE_SUFFIXES):  # not _created: a time, not a count
                    values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return values


def counted_since(before):
    """What this process counted since the run_samples() `before`: {key: increase}, zeros left out.

    One run at a time per process (the run lock), so this is the run's own count.
    """
    return {key: value - before.get(key, 0) for key, value in run_samples().items() if value != before.get(key, 0)}


def run_families(totals):
    """The run metrics as families built from metric_totals rows {(sample, labels): value}.

    Types, help and names come from this release's definitions; a stored sample no
    metric here claims (a metric since removed) is left out.
    """
    for metric in RUN_METRICS:
        for defined in metric.collect():
            family = Metric(defined.name, defined.documentation, defined.type)
            names = {defined.name + suffix for suffix in SAMPLE_SUFFIXES}
            # every series this process knows (KNOWN_LABELS) starts at 0, so a first count shows as an increase
            values = {(s.name, tuple(sorted(s.labels.items()))): 0 for s in defined.samples if s.name in names}
            values.update((key, value) for key, value in totals.items() if key[0] in names)
            for (name, labels), value in sorted(values.items(), key=_sample_order):
                family.add_sample(name, dict(labels), value)
            yield family


def _sample_order(item):
    (name, labels), _ = item
    le = dict(labels).get("le")
    return (name.rsplit("_", 1)[0], [kv for kv in labels if kv[0] != "le"], name, float(le) if le else 0)


# --- Read at scrape time -----------------------------------------------------


def scrape_families(state, config):
    """Gauges about the data, from store.observed_state() read when Prometheus scrapes."""
    now = time.time()

    family = Metric(
        "milesahead_articles", "Articles by workflow status (draft and pending wait for the editor).", "gauge"
    )
    for status in ("draft", "pending", "revision_requested", "approved", "rejected", "unpublished"):
        family.add_sample("milesahead_articles", {"status": status}, state["articles"].get(status, 0))
    yield family

    since = state["oldest_waiting_since"]
    yield _gauge(
        "milesahead_review_oldest_waiting_seconds",
        "How long the oldest draft or pending article has waited for the editor; 0 when none waits.",
        max(0.0, now - _epoch(since)) if since else 0,
    )
    finished = state["last_success_at"]
    yield _gauge(
        "milesahead_pipeline_last_success_timestamp_seconds",
        "When the last pipeline run that finished ok or partial ended (Unix time); 0 when none has.",
        _epoch(finished) if finished else 0,
    )
    yield _gauge(
        "milesahead_pipeline_feeds", "News feeds configured (pipeline.feeds).", len(config["pipeline"]["feeds"])
    )

    backups = backup_files(config["backup"]["dir"])
    newest = max((mtime for files in backups.values() for mtime in files), default=0)
    yield _gauge(
        "milesahead_backup_last_success_timestamp_seconds",
        "When the newest verified backup (any kind) was written, from backup.dir (Unix time); 0 when there is none.",
        newest,
    )
    family = Metric("milesahead_backup_files", "Verified backups kept, by kind (backup.sh's rotation).", "gauge")
    for kind, files in backups.items():
        family.add_sample(family.name, {"kind": kind}, len(files))
    yield family

    # Only once a replica has been checked: with replication off there is no replica to be
    # behind, and a 0 here would fire MilesaheadReplicaBehind on every such site.
    check = replica_check(config["database"]["path"])
    if not check:
        return
    yield _gauge(
        "milesahead_replica_last_success_timestamp_seconds",
        "When the nightly check last restored the Litestream replica and found it whole and"
        " current (bin/replica.py verify, Unix time); 0 when no check has passed yet.",
        check.get("last_ok_at") or 0,
    )
    yield _gauge(
        "milesahead_replica_check_ok",
        "1 when the latest replica check passed, 0 when it failed.",
        1 if check.get("ok") else 0,
    )


def replica_check(database_path):
    """The latest result bin/replica.py verify left beside the database ({} when none)."""
    path = os.path.join(os.path.dirname(os.path.abspath(database_path)), "replica-verified.json")
    try:
        with open(path, encoding="utf-8") as f:
            result = json.load(f)
    except (OSError, ValueError):
        return {}
    return result if isinstance(result, dict) else {}


def backup_files(directory):
    """{kind: [mtime of each milesahead-*.db.gz]} under backup.dir, as backup.sh writes them.

    backup.sh renames a copy into place only once it is verified, so any such file is a
    good backup; its temp files start with a dot and never match.
    """
    found = {}
    for kind in BACKUP_KINDS:
        found[kind] = []
        for path in glob.glob(os.path.join(directory, kind, "milesahead-*.db.gz")):
            try:
                found[kind].append(os.stat(path).st_mtime)
            except OSError:  # rotated away between the listing and the stat
                pass
    return found


def _gauge(name, documentation, value):
    family = Metric(name, documentation, "gauge")
    family.add_sample(name, {}, value)
    return family


def _epoch(stamp):
    return datetime.datetime.fromisoformat(stamp).timestamp()


# --- The exposition ----------------------------------------------------------


class _Exposition:
    """This process's metrics, except the run metrics, which come from the database."""

    def __init__(self, families):
        self.families = families

    def collect(self):
        return self.families


def exposition(totals=None, state=None, config=None, healthy=None):
    """/metrics: this process's request and publish metrics, the run totals, the scrape-time gauges.

    `totals` from store.metric_totals(), `state` from store.observed_state(); without
    them (the database is unusable) the run metrics and the data gauges are left out.
    """
    families = [family for family in REGISTRY.collect() if family.name not in RUN_NAMES]
    if healthy is not None:
        help_text = "1 when /healthz would answer 200 (the deploy gate's checks), else 0."
        families.append(_gauge("milesahead_healthy", help_text, 1 if healthy and totals is not None else 0))
    if totals is not None:
        families += run_families(totals)
        families += scrape_families(state, config)
    return generate_latest(_Exposition(families))


def instrument(wsgi):
    """Count every response by route pattern and status, tracebacks included.

    A WSGI wrapper rather than a Bottle hook because hooks never see the 500
    of an unhandled exception. Unmatched paths share one label so a scan of
    random URLs cannot blow up the number of series.
    """

    def counted(environ, start_response):
        started = time.perf_counter()
        seen = {}

        def capture(status, headers, exc_info=None):
            seen["status"] = status.split(" ", 1)[0]
            return start_response(status, headers, exc_info)

        try:
            return wsgi(environ, capture)
        finally:
            route = environ.get("bottle.route")
            rule = route.rule if route is not None else "unmatched"
            HTTP_REQUESTS.labels(route=rule, status=seen.get("status", "500")).inc()
            HTTP_DURATION.labels(route=rule).observe(time.perf_counter() - started)

    return counted
