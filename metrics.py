"""Prometheus metrics shared by the web app and the pipeline (one registry per process).

Names follow Prometheus conventions: the `milesahead_` prefix, base units,
`_total` on counters. /metrics serves REGISTRY; Caddy never exposes it.
"""

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

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


def set_build_info(release, schema_version):
    BUILD_INFO.clear()
    BUILD_INFO.labels(release=release, schema_version=str(schema_version)).set(1)


def exposition():
    return generate_latest(REGISTRY)


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
