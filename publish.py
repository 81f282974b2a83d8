"""Reader pages as files, so Caddy serves readers at static-file speed.

Reader pages change only when the editor publishes, the cards are seeded or a
release brings new templates, so they are rendered through the app's own Bottle
routes (exactly the bytes it would send) into `public/`, and a restart of the app
is invisible to readers. When pages are written and which file each URL becomes:
README.md, "Reader pages are published as files".

Rules every write keeps:
- atomic: a page goes to a temp file in the same directory, then is renamed over
  the old one, so a reader never gets half a page;
- only when the bytes changed, so ETag and Last-Modified stay stable for caches;
- all or nothing: a page that does not render (a 500) stops the whole batch before
  anything is replaced, so a broken release cannot publish broken pages;
- readable by Caddy (files 0644, directories 0755) whatever the process umask;
- one publisher at a time per public/ directory (an flock), so the app and a
  `seed-cards` run cannot interleave an older render over a newer one.

Each page also gets a gzip twin, so Caddy never compresses a page per request.
"""

import concurrent.futures
import contextlib
import fcntl
import gzip
import io
import logging
import os
import re
import sys
import tempfile
import time

import bottle

import metrics
import store

log = logging.getLogger("milesahead.publish")

# Pages that list articles or cards; each is rebuilt whenever what it lists changes.
ARTICLE_LISTS = ["/", "/deals", "/news", "/feed.xml", "/sitemap.xml", "/api/articles"]
CARD_LISTS = ["/cards", "/sitemap.xml", "/api/cards"]
OTHER_PAGES = ["/robots.txt"]
NAMED_FILES = {"/feed.xml", "/sitemap.xml", "/robots.txt"}  # served under their own names

SAFE_PATH = re.compile(r"^/(?:[a-z0-9][a-z0-9._-]*(?:/[a-z0-9][a-z0-9._-]*)*)?$")
FILE_MODE = 0o644
DIR_MODE = 0o755


class PublishError(Exception):
    """A page could not be published; nothing from that batch was replaced."""


def public_dir(config):
    """publish.dir, else `public/` beside the database (the data area)."""
    configured = config["publish"]["dir"]
    if configured:
        return configured
    return os.path.join(os.path.dirname(os.path.abspath(config["database"]["path"])), "public")


def file_for(path):
    """The file under public/ that holds a reader URL."""
    if not SAFE_PATH.match(path) or ".." in path:
        raise PublishError(f"{path!r} is not a publishable address")
    if path == "/":
        return "index.html"
    name = path.lstrip("/")
    if path.startswith("/api/"):
        return name + ".json"
    if path in NAMED_FILES or path.startswith("/static/"):
        return name
    return name + ".html"


# --- Which pages ----------------------------------------------------------------


def all_pages(conn):
    """Every public reader URL as the database stands now."""
    pages = [*ARTICLE_LISTS, *CARD_LISTS, *OTHER_PAGES]
    for card in store.card_summaries(conn):
        pages += card_pages(card["slug"])
    for slug in store.published_slugs(conn):
        pages += [f"/articles/{slug}", f"/api/articles/{slug}"]
    return sorted(set(pages))


def card_pages(slug):
    return [f"/cards/{slug}", f"/api/cards/{slug}"]


def article_pages(conn, article_id):
    """The URLs that show this article as it stands now: none unless it is published.

    Call it before and after a change and publish the union: the article, the
    lists, the feed, the sitemap and the cards it links (before and after, so a
    card that loses the article is rebuilt too).
    """
    article = store.get_article(conn, article_id)
    if article is None or article["status"] != "approved":
        return set()
    pages = {*ARTICLE_LISTS, f"/articles/{article['slug']}", f"/api/articles/{article['slug']}"}
    for card in store.article_linked_cards(conn, article_id):
        pages.update(card_pages(card["slug"]))
    return pages


def static_files(static_dir):
    """(URL, source file) for each file of the release's static/ directory."""
    found = []
    for folder, _dirs, names in os.walk(static_dir):
        for name in names:
            source = os.path.join(folder, name)
            found.append(("/static/" + os.path.relpath(source, static_dir).replace(os.sep, "/"), source))
    return sorted(found)


# --- The publisher -----------------------------------------------------------------


class Report:
    """What one publish did: counts for the operator, paths for the tests."""

    def __init__(self):
        self.written, self.removed, self.unchanged = [], [], []
        self.seconds = 0.0

    def __str__(self):
        return (
            f"{len(self.written)} written, {len(self.removed)} removed, "
            f"{len(self.unchanged)} unchanged in {self.seconds:.2f} s"
        )


class Publisher:
    """Renders reader URLs through one app into one public/ directory.

    Rendering runs on the publisher's own thread: Bottle keeps the current request
    in thread-locals, and a desk handler that published on its own thread would
    find its request and response replaced by the page it had just rendered.
    """

    def __init__(self, app, directory, static_dir):
        self.app = app
        self.directory = directory
        self.static_dir = static_dir
        self.lock_path = directory.rstrip("/") + ".lock"
        self._worker = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="publish")

    def publish(self, pages):
        """Re-render these URLs; a URL that no longer exists (404) loses its file."""
        return self._worker.submit(self._publish, sorted(set(pages)), False).result()

    def publish_all(self):
        """Re-render every reader URL and the static files, and remove what is left over."""
        return self._worker.submit(self._publish, None, True).result()

    def check(self):
        """That public/ can be written, without changing what it holds (serve, at start)."""
        try:
            self._make_dirs(self.directory)
            with self._locked():
                os.unlink(self._temp_file(os.path.join(self.directory, ".check"), b""))
        except OSError as e:
            raise self._unwritable(e) from None

    def _unwritable(self, error):
        where = error.filename or self.directory
        return PublishError(
            f"publish.dir {self.directory}: cannot write {where} ({error.strerror}); "
            "set publish.dir to a directory this user can write"
        )

    def _publish(self, pages, everything):
        try:
            return self._publish_pages(pages, everything)
        except OSError as e:  # a directory that cannot be made or written: say which
            metrics.PUBLISH_FAILURES.inc()
            raise self._unwritable(e) from None
        except BaseException:
            metrics.PUBLISH_FAILURES.inc()
            raise

    def _publish_pages(self, pages, everything):
        started = time.monotonic()
        report = Report()
        self._make_dirs(self.directory)
        with self._locked():
            statics = []
            if everything:
                with store.connected(self.app.state.config["database"]["path"]) as conn:
                    pages = all_pages(conn)
                statics = static_files(self.static_dir)
            staged = []
            try:
                for path in pages:
                    self._stage_page(path, staged, report)
                for path, source in statics:
                    with open(source, "rb") as f:
                        self._stage(file_for(path), f.read(), staged, report)
            except BaseException:
                for temp, _final in staged:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(temp)
                raise
            for temp, final in staged:
                os.replace(temp, final)
            for name in report.removed:
                for gone in (name, name + ".gz"):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(os.path.join(self.directory, gone))
            if everything:
                keep = {file_for(url) for url in pages}
                keep |= {name + ".gz" for name in keep}
                keep |= {file_for(url) for url, _source in statics}
                self._prune(keep, report)
        report.seconds = time.monotonic() - started
        metrics.PAGES_WRITTEN.inc(len(report.written))
        metrics.PUBLISH_DURATION.observe(report.seconds)
        return report

    def _stage_page(self, path, staged, report):
        status, body = self.render(path)
        name = file_for(path)
        if status == 200:
            self._stage(name, body, staged, report, compressed=True)
        elif status == 404:
            if os.path.exists(os.path.join(self.directory, name)):
                report.removed.append(name)
        else:
            raise PublishError(f"{path} rendered {status}; no page was replaced")

    def _stage(self, name, body, staged, report, compressed=False):
        """Write body to a temp file beside `name` unless the file already holds it.

        A compressed page also gets `name.gz` (gzip -9, no timestamp), which Caddy
        sends to readers who accept gzip: no compressing on every request.
        """
        final = os.path.join(self.directory, name)
        try:
            with open(final, "rb") as f:
                if f.read() == body and (not compressed or os.path.exists(final + ".gz")):
                    report.unchanged.append(name)
                    return
        except FileNotFoundError:
            pass
        self._make_dirs(os.path.dirname(final))
        staged.append((self._temp_file(final, body), final))
        if compressed:
            staged.append((self._temp_file(final + ".gz", gzip.compress(body, 9, mtime=0)), final + ".gz"))
        report.written.append(name)

    @staticmethod
    def _temp_file(final, body):
        """A readable temp file beside `final`, named as a dotfile nothing serves."""
        fd, temp = tempfile.mkstemp(prefix=f".{os.path.basename(final)}.", suffix=".tmp", dir=os.path.dirname(final))
        with os.fdopen(fd, "wb") as f:
            f.write(body)
        os.chmod(temp, FILE_MODE)
        return temp

    @staticmethod
    def _make_dirs(folder):
        """makedirs, with every directory it makes DIR_MODE: the umask masks makedirs'
        own mode (the unit's is 0027), and Caddy must be able to enter them."""
        if os.path.isdir(folder):
            return
        Publisher._make_dirs(os.path.dirname(folder))
        try:
            os.mkdir(folder)
        except FileExistsError:  # made by another publisher just now
            return
        os.chmod(folder, DIR_MODE)

    def _prune(self, keep, report):
        """Remove files no URL maps to any more (and temp files a crash left behind)."""
        for folder, _dirs, names in os.walk(self.directory):
            for name in names:
                rel = os.path.relpath(os.path.join(folder, name), self.directory).replace(os.sep, "/")
                if rel not in keep:
                    os.unlink(os.path.join(folder, name))
                    if not name.startswith("."):
                        report.removed.append(rel)

    @contextlib.contextmanager
    def _locked(self):
        with open(self.lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def render(self, path):
        """(status, body) of a GET for `path` from the app's own routes."""
        environ = {
            "REQUEST_METHOD": "GET",
            "SCRIPT_NAME": "",
            "PATH_INFO": path,
            "QUERY_STRING": "",
            "SERVER_NAME": "publish.invalid",
            "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "HTTP_HOST": "publish.invalid",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        statuses = []

        def start_response(status, _headers, exc_info=None):
            statuses.append(int(status.split()[0]))

        # The app's own handler, not the metrics wrapper: publishing is not reader traffic.
        chunks = bottle.Bottle.wsgi(self.app, environ, start_response)
        try:
            body = b"".join(chunks)
        finally:
            if hasattr(chunks, "close"):
                chunks.close()
        return statuses[0], body
