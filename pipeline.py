"""The content pipeline: news feeds in, checked draft articles with the right image out.

What a run does, its commands and exit codes, and what a run record holds:
docs/pipeline.md. What the code keeps true:

- one run at a time: an fcntl lock on <database dir>/pipeline.lock, which the
  kernel releases when the process dies, so a crash never leaves it stuck; a run
  row still marked `running` from a dead process is marked `interrupted` by the
  next run;
- nothing is written for a story until its article is complete, in one
  transaction, so a killed run leaves no half-written article and a story whose
  article exists is never written twice;
- a failing story, feed, image source or revision is recorded in the run and the
  run goes on.

Sections: configuration, the lock, run records, stories, editor feedback,
entry points (run, scan, trigger_run, start_scheduler), status, CLI.
"""

import argparse
import contextlib
import fcntl
import logging
import os
import re
import signal
import sqlite3
import sys
import threading
import time
from collections import Counter

import requests

import config as configuration
import feeds
import images
import llm
import metrics
import outside
import store
import writer

log = logging.getLogger("milesahead.pipeline")


class NotConfigured(Exception):
    """The pipeline lacks what it needs to run (the message says what)."""


class RunInProgress(Exception):
    """Another run holds the lock."""


class Stopping(BaseException):
    """SIGTERM or SIGINT arrived: the run ends now, recorded as `interrupted`.

    A BaseException, like KeyboardInterrupt, so no `except Exception` on the way up holds it.
    """

    def __init__(self, signum):
        super().__init__(f"stopped by signal {signal.Signals(signum).name}")
        self.signum = signum


# --- Configuration -----------------------------------------------------------


def is_configured(config):
    """(True, summary) when a run can start, else (False, what to set)."""
    if not config["llm"]["api_key"]:
        return False, (
            "no LLM API key: set llm.api_key in the config (normally ${NVIDIA_API_KEY}, "
            "so export NVIDIA_API_KEY). Nothing runs without it."
        )
    problem = feeds_problem(config)
    if problem:
        return False, problem
    count = len(config["pipeline"]["feeds"])
    return True, f"{count} feed{'s' if count != 1 else ''}; models at {config['llm']['base_url']}"


def feeds_problem(config):
    entries = config["pipeline"]["feeds"]
    if not entries:
        return "no feeds: list RSS or Atom feeds under pipeline.feeds (a name and a url each)."
    for n, entry in enumerate(entries):
        if not isinstance(entry, dict) or not str(entry.get("url", "")).startswith(("http://", "https://")):
            return f"pipeline.feeds[{n}] needs a url starting with http:// or https://"
    return None


# --- The lock ----------------------------------------------------------------


def lock_path(config):
    return os.path.join(os.path.dirname(os.path.abspath(config["database"]["path"])), "pipeline.lock")


class RunLock:
    """An exclusive flock on a file holding the owner's PID; the kernel drops it with the process.

    flock locks belong to the open file, so a second RunLock in the same process
    (the scheduler and the admin button, say) is refused too.
    """

    def __init__(self, path):
        self.path = path
        self.fd = None

    def acquire(self):
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd
        return True

    def release(self):
        if self.fd is not None:
            os.ftruncate(self.fd, 0)
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None

    def holder(self):
        """PID of the process holding the lock, or None when it is free."""
        if self.fd is not None:
            return os.getpid()
        probe = RunLock(self.path)
        if probe.acquire():
            probe.release()
            return None
        try:
            with open(self.path) as f:
                return int(f.read().strip() or 0) or -1
        except (OSError, ValueError):
            return -1


# --- Run records -------------------------------------------------------------


class Run:
    """One pipeline_runs row: stage timings, counts, errors and failed outside calls, saved as they happen."""

    def __init__(self, conn, run_id, before):
        self.conn = conn
        self.id = run_id
        self.stages = {}
        self.counts = Counter()
        self.errors = []
        self.failures = []
        self.before = before  # this process's run metrics when the run began
        self.saved = {}  # what this run has added to metric_totals so far

    @classmethod
    def start(cls, conn, trigger):
        before = metrics.run_samples()
        with store.transaction(conn):
            stale = store.mark_runs_interrupted(conn, "the process running this run stopped before it finished")
            run_id = store.start_run(conn, trigger)
        if stale:
            metrics.PIPELINE_RUNS.labels(outcome="interrupted").inc(len(stale))
        return cls(conn, run_id, before)

    @contextlib.contextmanager
    def stage(self, name):
        started = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - started
            self.stages[name] = round(self.stages.get(name, 0) + elapsed, 3)
            metrics.PIPELINE_DURATION.labels(stage=name).observe(elapsed)
            self.save()

    def count(self, name, n=1):
        self.counts[name] += n

    def error(self, message):
        log.warning("run %s: %s", self.id, message)
        self.errors.append(message)

    def fail(self, kind, name, story, reason):
        """A failed outside call: kind is "source" (an image API or host), "model" (a role) or "feed"."""
        reason = " ".join(str(reason).split())[:300]
        log.warning("run %s: %s %s failed%s: %s", self.id, kind, name, f" for {story}" if story else "", reason)
        self.failures.append({kind: name, "story": story or "", "reason": reason})
        self.count("calls_failed")
        metrics.CALL_FAILURES.labels(service="feed" if kind == "feed" else name, outcome=outcome_of(reason)).inc()

    def save(self, status=None):
        counted = metrics.counted_since(self.before)
        increments = {key: value - self.saved.get(key, 0) for key, value in counted.items()}
        with store.transaction(self.conn):
            store.save_run(self.conn, self.id, self.stages, dict(self.counts), self.errors, self.failures, status)
            # in the same transaction, so /metrics never counts a stage twice or loses one
            store.add_metric_totals(self.conn, {key: n for key, n in increments.items() if n})
        self.saved = counted

    def finish(self, status=None):
        status = status or ("partial" if self.errors or self.failures else "ok")
        metrics.PIPELINE_RUNS.labels(outcome=status).inc()
        self.save(status)
        return status


OUTCOMES = (
    ("rate_limited", r"HTTP 429|rate.?limit|ratelimited"),
    ("server_error", r"HTTP 5\d\d"),
    ("refused", r"HTTP 4\d\d"),
    ("api_error", r"API error"),
    ("timeout", r"deadline|timed out|within|budget"),
    ("connection", r"connection"),
    ("bad_reply", r"unusable|no numeric score|not JSON|malformed|shape|not a whole feed|not a feed|no scores"),
)


def outcome_of(reason):
    """The metrics label for a failure's reason: a handful of kinds, never the text itself."""
    for outcome, pattern in OUTCOMES:
        if re.search(pattern, reason, re.IGNORECASE):
            return outcome
    return "other"


# --- Stories -----------------------------------------------------------------


def fetch_feeds(conn, config, run):
    """Every feed, all within pipeline.fetch_budget_seconds; one not reached in time is recorded."""
    timeout = float(config["pipeline"]["fetch_timeout_seconds"])
    deadline = outside.deadline_in(float(config["pipeline"]["fetch_budget_seconds"]))
    agent = images.user_agent(config)
    session = requests.Session()
    for source in feeds.sync_sources(conn, config["pipeline"]["feeds"]):
        result = feeds.fetch(conn, source, session, timeout, agent, deadline)
        run.count(f"feeds_{result['status']}")
        run.count("items_new", result["new"])
        run.count("items_duplicate", result["duplicates"])
        if result["error"]:
            run.fail("feed", source["name"], "", result["error"])
        for message in result["dropped_links"]:  # a feed's link that is not http(s): said, never stored
            run.error(f"feed {message}")


def write_story(conn, config, client, run, story_id):
    """Write, check, illustrate and store one story as a draft. Returns the article id."""
    done = store.article_for_story(conn, story_id)
    if done:  # stored by a run that died before marking its story
        store.mark_story(conn, story_id, "generated", article_id=done)
        return done
    story = store.get_story(conn, story_id)
    label = f"story {story_id} ({story['title'][:60]})"
    client = client.until(outside.deadline_in(float(config["pipeline"]["story_budget_seconds"])))
    with run.stage("generate"):
        article = writer.write_article(client, story)
        refused = list(article["refused_links"])  # links the model wrote that urls.safe_url refused
        verdict = writer.critique(client, story, article)
        if verdict["issues"]:
            try:
                revised = writer.revise_article(client, story, article, verdict["issues"])
                refused += revised["refused_links"]
                second = writer.critique(client, story, revised)
            except llm.LLMError as e:
                run.fail("model", model_role(e), label, f"revision skipped, keeping the first version: {e}")
            else:
                run.count("critic_revisions")
                if second["score"] >= verdict["score"]:
                    article, verdict = revised, second
        if not article["key_details"] or not article["links"]:
            try:
                extra = writer.fill_details(client, story, article)
            except llm.LLMError as e:
                run.fail("model", model_role(e), label, f"key details and links not filled: {e}")
            else:
                article["key_details"] = article["key_details"] or extra["key_details"]
                article["links"] = article["links"] or extra["links"]
                refused += extra["refused_links"]
        for url in writer.keep_links(article, allowed_domains(conn, story["items"])):
            run.count("links_dropped")
            run.error(f"{label}: link {url[:100]!r} dropped (not a source's site or a card issuer's)")
        try:
            take = writer.persona_take(client, config["site"]["persona_name"], article)
        except llm.LLMError as e:
            run.fail("model", model_role(e), label, f"no persona take: {e}")
            take = ""
    with run.stage("image"):
        found = images.find_image(config, client, article)
    for failure in found["failures"]:
        kind = "model" if "model" in failure else "source"
        term = f" (search {failure['term']!r})" if failure.get("term") else ""
        run.fail(kind, failure[kind], label, failure["reason"] + term)
    # URLs from the model or the image APIs that urls.safe_url refused: said, never stored
    for url in refused:
        run.error(f"{label}: the model's link {url!r} dropped (only http(s) is kept)")
    for message in found["refused"]:
        run.error(f"{label}: {message}")
    run.count("images_found" if found["fields"] else "images_none")
    sources = [{"title": i["title"], "url": i["url"], "site": i["site"]} for i in story["items"]]
    article_id = store.insert_article(
        conn,
        author="pipeline",
        note=f"written from {len(sources)} sources; critic {verdict['score']:g}/10; image: {found['note']}",
        status="draft",
        type=story["type"],
        title=article["title"],
        tldr=article["tldr"],
        key_details=article["key_details"],
        body_html=article["body_html"],
        links=article["links"],
        sources=sources,
        persona_take=take,
        critic_score=verdict["score"],
        critic_issues=verdict["issues"],
        image_candidates=found["candidates"],
        cluster_id=story_id,
        **found["fields"],
    )
    store.mark_story(conn, story_id, "generated", article_id=article_id)
    metrics.CRITIC_SCORE.observe(verdict["score"])
    return article_id


def allowed_domains(conn, items):
    """The domains an article may link to: its sources' and the card issuers' (from each card's official page).

    Feed text can ask a model for any link; only these survive (writer.keep_links).
    """
    domains = {writer.domain_of(i["url"]) for i in items if i.get("url")}
    domains |= {writer.domain_of(i["site"]) for i in items if i.get("site")}
    domains |= {writer.domain_of(url) for url in store.issuer_urls(conn)}
    return domains - {""}


def model_role(error):
    """The model role an LLMError came from (llm.Client tags it), for the run record and metrics."""
    return getattr(error, "role", None) or "model"


def write_stories(conn, config, client, run):
    for story_id in store.stories_to_write(conn, config["pipeline"]["max_stories_per_run"]):
        if outside.STOP.is_set():  # the process is stopping: leave the rest for the next run
            break
        try:
            write_story(conn, config, client, run, story_id)
        except llm.LLMError as e:
            reason = str(e)
            run.fail("model", model_role(e), f"story {story_id}", reason)
        except Exception as e:  # a bug in one story must not cost the others
            log.exception("story %s failed", story_id)
            reason = f"{type(e).__name__}: {e}"
        else:
            run.count("drafts_written")
            continue
        run.count("stories_failed")
        run.error(f"story {story_id}: {reason}")
        store.mark_story(conn, story_id, "failed", error=reason)


# --- Editor feedback ---------------------------------------------------------


def revise_requested(conn, config, client, run):
    """Every article the editor sent back: revise with the feedback, re-score, move to pending."""
    import workflow  # the desk's state machine; imported late so feeds-only tools need not load it

    persona = config["site"]["persona_name"]
    for article_id in store.ids_with_status(conn, "revision_requested"):
        if outside.STOP.is_set():
            break
        article = store.get_article(conn, article_id)
        bounded = client.until(outside.deadline_in(float(config["pipeline"]["story_budget_seconds"])))
        try:
            revised = writer.revise_for_editor(bounded, persona, article, article["feedback"])
            for url in revised["refused_links"]:
                run.error(
                    f"revision of article {article['id']}: the model's link {url!r} dropped (only http(s) is kept)"
                )
            for url in writer.keep_links(revised, allowed_domains(conn, article["sources"])):
                run.count("links_dropped")
                run.error(f"revision of article {article['id']}: link {url[:100]!r} dropped (not a source's site)")
            verdict = writer.critique_revision(bounded, {**article, **revised})
            fields = {
                "title": revised["title"],
                "tldr": revised["tldr"] or article["tldr"],
                "body_html": revised["body_html"],
                "key_details": revised["key_details"] or article["key_details"],
                "links": revised["links"] or article["links"],
                "persona_take": revised.get("persona_take") or article["persona_take"],
                "critic_score": verdict["score"],
                "critic_issues": verdict["issues"],
            }
            note = f"revised for the editor's feedback; critic {verdict['score']:g}/10"
            workflow.revise(conn, article["id"], "pipeline", note=note, to_status="pending", **fields)
        except (llm.LLMError, workflow.TransitionRefused) as e:
            run.count("revisions_failed")
            run.error(f"revision of article {article['id']}: {e}")
            if isinstance(e, llm.LLMError):
                run.fail("model", model_role(e), f"article {article['id']}", str(e))
        except Exception as e:  # same rule as stories: one bad article never stops the rest
            log.exception("revision of article %s failed", article["id"])
            run.count("revisions_failed")
            run.error(f"revision of article {article['id']}: {type(e).__name__}: {e}")
        else:
            run.count("revisions_done")
            metrics.CRITIC_SCORE.observe(verdict["score"])


# --- Entry points ------------------------------------------------------------


def run(config, trigger="cli"):
    """One full run in this thread. Returns its run id.

    Raises NotConfigured (nothing is done at all) or RunInProgress.
    """
    configured, reason = is_configured(config)
    if not configured:
        raise NotConfigured(reason)
    lock = RunLock(lock_path(config))
    if not lock.acquire():
        raise RunInProgress(in_progress_message(config, lock))
    try:
        return execute(config, trigger, write=True)
    finally:
        lock.release()


def scan(config):
    """Fetch feeds and group stories, calling no model. Returns the run id."""
    problem = feeds_problem(config)
    if problem:
        raise NotConfigured(problem)
    lock = RunLock(lock_path(config))
    if not lock.acquire():
        raise RunInProgress(in_progress_message(config, lock))
    try:
        return execute(config, "scan", write=False)
    finally:
        lock.release()


def execute(config, trigger, write, lock=None):
    """The run itself (the caller holds the lock; released here when handed over)."""
    try:
        with store.connected(config["database"]["path"]) as conn:
            store.migrate(conn)
            run_record = Run.start(conn, trigger)
            started = time.perf_counter()
            try:
                with run_record.stage("fetch"):
                    fetch_feeds(conn, config, run_record)
                with run_record.stage("cluster"):
                    grouped = feeds.group_stories(conn, config["pipeline"])
                    run_record.count("stories_new", len(grouped["stories"]))
                    run_record.count("items_joined_stories", grouped["attached"])
                if write:
                    client = llm.Client(config)
                    write_stories(conn, config, client, run_record)
                    with run_record.stage("feedback"):
                        revise_requested(conn, config, client, run_record)
                    run_record.count("llm_requests", client.stats["requests"])
                    run_record.count("llm_cache_hits", client.stats["cache_hits"])
            except Exception as e:
                log.exception("run %s failed", run_record.id)
                run_record.error(f"run failed: {type(e).__name__}: {e}")
                run_record.stages["total"] = round(time.perf_counter() - started, 3)
                run_record.finish("failed")
            except BaseException as e:  # SIGTERM/SIGINT (Stopping), Ctrl-C, SystemExit: say so, then stop
                run_record.error(f"stopped by a signal ({e})" if isinstance(e, Stopping) else "stopped by a signal")
                run_record.stages["total"] = round(time.perf_counter() - started, 3)
                run_record.finish("interrupted")
                raise
            else:
                elapsed = time.perf_counter() - started
                run_record.stages["total"] = round(elapsed, 3)
                metrics.PIPELINE_DURATION.labels(stage="total").observe(elapsed)
                if outside.STOP.is_set():  # stop_runs: the web process is stopping under this run
                    run_record.error("stopped by a signal: the process is shutting down")
                    run_record.finish("interrupted")
                else:
                    run_record.finish()
            return run_record.id
    finally:
        if lock is not None:
            lock.release()


def in_progress_message(config, lock):
    pid = lock.holder()
    who = f" (process {pid})" if pid and pid > 0 else ""
    return f"a pipeline run is already in progress{who}; try again when it finishes"


def trigger_run(config, trigger="admin"):
    """Start a run in a background thread. Returns (started, a sentence saying what happened)."""
    configured, reason = is_configured(config)
    if not configured:
        return False, f"Not started: {reason}"
    lock = RunLock(lock_path(config))
    if not lock.acquire():
        return False, f"Not started: {in_progress_message(config, lock)}."

    def background():
        try:
            execute(config, trigger, write=True, lock=lock)
        except Exception:
            log.exception("background pipeline run failed")

    threading.Thread(target=background, name=f"pipeline-{trigger}", daemon=True).start()
    return True, "Pipeline run started; it appears in the list of runs and finishes in a few minutes."


def stop_runs(config, timeout=3):
    """This process is stopping (the web app's SIGTERM): its run in flight ends `interrupted`.

    STOP makes the run give up its outside calls at their next read and record itself; a
    call still waiting on a silent server after `timeout` seconds is not waited for: the
    row is marked here (the lock says the run is ours), and the process dies with it.
    """
    outside.STOP.set()
    lock = RunLock(lock_path(config))
    deadline = time.monotonic() + timeout
    while lock.holder() == os.getpid() and time.monotonic() < deadline:
        time.sleep(0.05)
    if lock.holder() == os.getpid():
        with store.connected(config["database"]["path"]) as conn, store.transaction(conn):
            stopped = store.mark_runs_interrupted(conn, "stopped by a signal: the process is shutting down")
        metrics.PIPELINE_RUNS.labels(outcome="interrupted").inc(len(stopped))


class Scheduler:
    """Runs the pipeline every pipeline.schedule_minutes inside the web process."""

    def __init__(self, config, interval_seconds):
        self.config = config
        self.interval = interval_seconds
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.loop, name="pipeline-scheduler", daemon=True)
        self.said_not_configured = False

    def start(self):
        self.thread.start()
        return self

    def stop(self, timeout=10):
        self.stopped.set()
        self.thread.join(timeout)

    def loop(self):
        while not self.stopped.wait(self.interval):
            self.tick()

    def tick(self):
        try:
            run(self.config, trigger="schedule")
        except NotConfigured as e:
            if not self.said_not_configured:  # once, not every interval
                log.warning("scheduled pipeline runs are on, but the pipeline is not configured: %s", e)
                self.said_not_configured = True
        except RunInProgress as e:
            log.info("scheduled run skipped: %s", e)
        except Exception:
            log.exception("scheduled pipeline run failed")


def start_scheduler(config):
    """Start the in-process schedule; None when pipeline.schedule_minutes is 0 (the default)."""
    minutes = float(config["pipeline"]["schedule_minutes"] or 0)
    if minutes <= 0:
        return None
    log.warning("pipeline runs every %g minutes in this process", minutes)
    return Scheduler(config, minutes * 60).start()


# --- Status ------------------------------------------------------------------


def status_report(config):
    """What `pipeline.py status` prints: configuration, lock, queues, recent runs."""
    configured, reason = is_configured(config)
    lines = [f"configured: {'yes' if configured else 'NO'} - {reason}"]
    minutes = config["pipeline"]["schedule_minutes"]
    lines.append(f"schedule: every {minutes} minutes in the web process" if minutes else "schedule: off")
    pid = RunLock(lock_path(config)).holder()
    lines.append(f"lock: held by process {pid} (a run is in progress)" if pid else "lock: free (no run in progress)")
    with store.connected(config["database"]["path"]) as conn:
        store.migrate(conn)
        waiting = store.story_counts(conn)
        statuses = store.status_counts(conn)
        lines.append(
            "stories: {} waiting, {} failed, {} written".format(
                waiting.get("new", 0), waiting.get("failed", 0), waiting.get("generated", 0)
            )
        )
        lines.append(
            "articles: {} drafts, {} awaiting revision, {} pending review".format(
                statuses.get("draft", 0), statuses.get("revision_requested", 0), statuses.get("pending", 0)
            )
        )
        runs = store.list_runs(conn, 5)
        lines.append("recent runs:" if runs else "recent runs: none yet")
        for r in runs:
            shown = ", ".join(f"{k} {v}" for k, v in sorted(r["counts"].items()) if v)
            lines.append(
                f"  #{r['id']} {r['started_at']} {r['trigger']}: {r['status']}" + (f" ({shown})" if shown else "")
            )
            for error in r["errors"][:3]:
                lines.append(f"      ! {error}")
            for failure in r["failures"][:5]:
                lines.append(f"      ! {describe_failure(failure)}")
            if len(r["failures"]) > 5:
                lines.append(f"      ! ... and {len(r['failures']) - 5} more failed calls")
    return "\n".join(lines)


def describe_failure(failure):
    """One line for a failed call: `source unsplash, story 3 (...): HTTP 503`."""
    kind = next((k for k in ("source", "model", "feed") if k in failure), "call")
    story = f", {failure['story']}" if failure.get("story") else ""
    return f"{kind} {failure.get(kind, '?')}{story}: {failure.get('reason', '')}"


def run_summary(config, run_id):
    with store.connected(config["database"]["path"]) as conn:
        run = store.get_run(conn, run_id)
    lines = [f"run {run_id}: {run['status']} in {run['stages'].get('total', 0):.1f}s"]
    lines += [f"  {k}: {v}" for k, v in sorted(run["counts"].items())]
    lines += [f"  error: {e}" for e in run["errors"]]
    lines += [f"  failed call: {describe_failure(f)}" for f in run["failures"]]
    return run["status"], "\n".join(lines)


# --- Command line ------------------------------------------------------------

EXIT_OK = 0
EXIT_PARTIAL = 1
EXIT_NOT_CONFIGURED = 2
EXIT_BUSY = 3
EXIT_FAILED = 4
EXIT_CODES = {"ok": EXIT_OK, "partial": EXIT_PARTIAL, "failed": EXIT_FAILED}


def parser():
    """The command line; tests read its commands from here."""
    parser = argparse.ArgumentParser(
        prog="pipeline.py",
        description="milesahead content pipeline: turn news feeds into checked draft articles for the editor.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "Config: --config PATH, else $MILESAHEAD_CONFIG, else ./config.yaml, else built-in defaults.\n"
            "Needs llm.api_key (NVIDIA_API_KEY) and pipeline.feeds.\n\n"
            "Exit status of run and scan (the run's status in pipeline_runs):\n"
            f"  {EXIT_OK}    ok: every outside call answered and every story was written\n"
            f"  {EXIT_PARTIAL}    partial: the run finished, but some calls (feeds, image sources, models) or\n"
            "       stories failed; each is in the run record (`status`, the desk's Pipeline runs)\n"
            f"  {EXIT_NOT_CONFIGURED}    not configured: nothing was done (the message says what to set)\n"
            f"  {EXIT_BUSY}    another run in progress: nothing was done\n"
            f"  {EXIT_FAILED}    failed: the run itself stopped on an unexpected error\n"
            "  130  interrupted by SIGINT, 143 interrupted by SIGTERM (the run is marked interrupted)"
        ),
    )
    parser.add_argument("--config", metavar="PATH", help="YAML config file (see config.example.yaml)")
    parser.add_argument("-q", "--quiet", action="store_true", help="print only the summary, not progress")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser(
        "run",
        help="one full run now: fetch, group, write, critique, illustrate, store drafts, revise sent-back articles",
    )
    commands.add_parser("scan", help="fetch feeds and group stories only; calls no model (no API key needed)")
    commands.add_parser("status", help="configuration, lock holder, story and article queues, recent runs")
    return parser


def main(argv=None):
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
    )
    try:
        config = configuration.load_config(args.config)
    except configuration.ConfigError as e:
        raise SystemExit(f"config error: {e}") from None

    try:
        return command(args, config)
    except store.DatabaseError as e:
        raise SystemExit(f"database error: {e}") from None
    except sqlite3.Error as e:  # opened, then refused a read or write (not SQLite, read-only, full disk)
        path = config["database"]["path"]
        raise SystemExit(f"database error: {path}: {e}; {store.USABLE_DATABASE}") from None


def command(args, config):
    """Run one CLI command; main() turns database errors into one line."""
    if args.command == "status":
        print(status_report(config))
        return 0
    stop_on_signals()
    try:
        run_id = scan(config) if args.command == "scan" else run(config, trigger="cli")
    except NotConfigured as e:
        print(f"pipeline not configured: {e}", file=sys.stderr)
        return EXIT_NOT_CONFIGURED
    except RunInProgress as e:
        print(f"not started: {e}", file=sys.stderr)
        return EXIT_BUSY
    except Stopping as e:
        print(f"run interrupted: {e}", file=sys.stderr)
        # The run row is saved. Exit now: a worker thread still in a socket read (a
        # download, a model reply) would otherwise hold the interpreter's exit until
        # its own deadline, and systemd's stop waits for none of that.
        sys.stdout.flush()
        sys.stderr.flush()
        logging.shutdown()
        os._exit(128 + e.signum)
    status, summary = run_summary(config, run_id)
    print(summary)
    return EXIT_CODES.get(status, EXIT_FAILED)


def stop_on_signals():
    """SIGTERM (systemd stop, a deploy's restart) and SIGINT end a run as `interrupted` within seconds.

    The handler runs on the main thread and raises there, even inside a blocking read; STOP
    tells calls in flight on worker threads (image searches, downloads, vision) to give up.
    """

    def stop(signum, frame):
        outside.STOP.set()
        raise Stopping(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)


if __name__ == "__main__":
    sys.exit(main())
