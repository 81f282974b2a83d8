"""The editorial desk: login, queues, review, actions, pipeline runs, and its JSON API.

Sections, top to bottom: desk state (secret, throttle), sessions and CSRF,
guards, pages, actions, pipeline runs, JSON API, routes.

Security in brief: the password is checked against a bcrypt hash from config
(no hash, no desk); the session is a cookie `issued.nonce.hmac` signed with the
session secret and expiring after admin.session_hours; every POST carries a
CSRF token derived from the session (or, on the login form, from a short-lived
signed pre-login cookie); failed logins are throttled per client address, and
password checks for the account are capped per minute, whatever the address.
The state machine itself lives in workflow.py; handlers here only call it.
"""

import base64
import collections
import contextlib
import functools
import hashlib
import hmac
import json
import logging
import os
import secrets
import threading
import time

import bcrypt
import bottle
from bottle import request, response

import app as site
import display
import metrics
import pipeline
import publish
import store
import workflow

log = logging.getLogger("milesahead.admin")

SESSION_COOKIE = "milesahead_admin"
LOGIN_COOKIE = "milesahead_login"
FLASH_COOKIE = "milesahead_flash"
LOGIN_FORM_SECONDS = 2 * 3600
CLOCK_SKEW_SECONDS = 60
EDITOR = "editor"
# Form action in the URL -> target status.
ACTIONS = {
    "approve": "approved",
    "reject": "rejected",
    "request-revision": "revision_requested",
    "submit": "pending",
    "unpublish": "unpublished",
}
DONE = {
    "approved": "Approved: the article is live and linked to the cards it mentions.",
    "rejected": "Rejected.",
    "revision_requested": "Revision requested: the pipeline will revise it with your feedback.",
    "pending": "Back in the review queue.",
    "unpublished": "Unpublished: readers can no longer see it, and its Recent Changes entries are gone.",
}


# --- Desk state ----------------------------------------------------------------


class Throttle:
    """Login failures per client, and password checks for the one account.

    Per client: after `max_failures` in a row, a doubling wait; a throttled client is
    answered 429 at once (no thread sleeps); a success, or an hour without failures,
    forgets the client. Nothing else does: the table keeps at most `max_clients`, and
    when it is full of live entries a newcomer's failures count in one entry shared by
    every client not in the table. So a flood from many addresses shortens no one's
    wait, and costs the flooders a shared budget.

    Overall: at most `checks_per_minute` password checks (bcrypt) in any 60 seconds,
    whoever asks, so many addresses together guess no faster than that.
    """

    BASE_DELAY = 2
    MAX_DELAY = 15 * 60
    FORGET_AFTER = 3600  # > MAX_DELAY: a client forgotten is never still waiting
    SHARED = None  # the key of the entry clients outside a full table share

    def __init__(self, max_failures, checks_per_minute, max_clients=10_000):
        self.max_failures = max(1, max_failures)
        self.checks_per_minute = checks_per_minute
        self.max_clients = max_clients
        self.clients = collections.OrderedDict()  # address -> [failures, last_failure, locked_until], oldest first
        self.checks = collections.deque()  # times of the password checks in the last minute
        self.lock = threading.Lock()

    def _key(self, client, now):
        """The entry a client's failures count in: its own, or the shared one when the table is full."""
        if client in self.clients:
            return client
        while self.clients:  # forget the oldest clients an hour quiet, and only them
            oldest = next(iter(self.clients))
            if now - self.clients[oldest][1] <= self.FORGET_AFTER:
                break
            del self.clients[oldest]
        tracked = len(self.clients) - (self.SHARED in self.clients)
        return client if tracked < self.max_clients else self.SHARED

    def retry_after(self, client, now):
        """Seconds this client must still wait (0: may try now)."""
        with self.lock:
            entry = self.clients.get(client if client in self.clients else self.SHARED)
            return 0 if entry is None else max(0, int(entry[2] - now + 0.999))

    def failure(self, client, now):
        """Record a failure; returns (failures in a row, seconds until the next try)."""
        with self.lock:
            key = self._key(client, now)
            entry = self.clients.pop(key, None) or [0, now, now]
            self.clients[key] = entry  # now the newest
            if now - entry[1] > self.FORGET_AFTER:
                entry[0] = 0
            entry[0] += 1
            entry[1] = now
            delay = 0
            if entry[0] >= self.max_failures:
                delay = min(self.MAX_DELAY, self.BASE_DELAY * 2 ** (entry[0] - self.max_failures))
            entry[2] = max(entry[2], now + delay)
            return entry[0], delay

    def success(self, client):
        with self.lock:
            self.clients.pop(client, None)

    def password_check(self, now):
        """Take one of the minute's password checks: 0, or the seconds until one is free."""
        with self.lock:
            while self.checks and now - self.checks[0] >= 60:
                self.checks.popleft()
            if len(self.checks) >= self.checks_per_minute:
                return max(1, int(self.checks[0] + 60 - now + 0.999))
            self.checks.append(now)
            return 0


class Desk:
    """Everything the desk keeps per app: config, secret, throttle, clock.

    Logged-out sessions live in the database (revoked_sessions), so a logout holds
    across restarts and across the web process and any other.
    """

    def __init__(self, config):
        self.config = config
        self.secret = load_secret(config)
        self.throttle = Throttle(
            config["admin"]["max_login_failures"], config["admin"]["max_password_checks_per_minute"]
        )
        self.clock = time.time  # tests move time forward by replacing this

    @property
    def session_seconds(self):
        return int(self.config["admin"]["session_hours"] * 3600)

    def sign(self, purpose, payload):
        return hmac.new(self.secret, f"{purpose}|{payload}".encode(), hashlib.sha256).hexdigest()

    def revoke(self, conn, nonce, issued):
        with store.transaction(conn):
            conn.execute("DELETE FROM revoked_sessions WHERE expires_at < ?", (int(self.clock()),))
            conn.execute(
                "INSERT OR IGNORE INTO revoked_sessions (nonce, expires_at) VALUES (?, ?)",
                (nonce, issued + self.session_seconds + CLOCK_SKEW_SECONDS),
            )

    def is_revoked(self, conn, nonce):
        return conn.execute("SELECT 1 FROM revoked_sessions WHERE nonce = ?", (nonce,)).fetchone() is not None


def load_secret(config):
    """admin.session_secret, else <database dir>/session_secret, created (0600) on first start."""
    configured = config["admin"]["session_secret"]
    if configured:
        return configured.encode()
    folder = os.path.dirname(os.path.abspath(config["database"]["path"]))
    path = os.path.join(folder, "session_secret")
    try:
        return read_or_make_secret(folder, path)
    except OSError as e:
        raise site.CommandError(
            f"{path}: cannot read or create the session secret ({e.strerror}); make {folder} writable "
            "by this user, or set admin.session_secret"
        ) from None


def read_or_make_secret(folder, path):
    os.makedirs(folder, exist_ok=True)
    for _ in range(20):
        try:
            with open(path, "rb") as f:
                secret = f.read().strip()
        except FileNotFoundError:
            try:  # O_EXCL: of two processes starting at once, one writes and both read it
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                continue
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32) + "\n")
            continue
        if len(secret) >= 32:
            return secret
        time.sleep(0.05)  # another process is between creating and writing it
    raise site.CommandError(f"{path}: session secret file is empty or too short; delete it to have a new one made")


def desk():
    return request.app.config["milesahead.desk"]


def password_hash():
    return desk().config["admin"]["password_hash"].strip()


def closed_reason():
    """Why the desk cannot open (no usable password hash), or '' when it can."""
    hashed = password_hash()
    if not hashed:
        return (
            "No admin password is configured, so the editorial desk is closed. "
            "Make a hash with `python app.py hash-password` and set it as admin.password_hash "
            "(normally ${ADMIN_PASSWORD_HASH}) in config.yaml, then restart."
        )
    if not (hashed.startswith(("$2a$", "$2b$", "$2y$")) and len(hashed) == 60):
        return (
            "admin.password_hash is set but is not a bcrypt hash, so the editorial desk is closed. "
            "Make one with `python app.py hash-password`."
        )
    return ""


def check_password(password):
    raw = password.encode()
    if not raw or len(raw) > 72:  # bcrypt cannot hold more; such a password was never hashed
        return False
    try:
        return bcrypt.checkpw(raw, password_hash().encode())
    except ValueError:
        return False


def client_address():
    # REMOTE_ADDR, never X-Forwarded-For: waitress rewrites it only from a trusted proxy.
    return request.environ.get("REMOTE_ADDR") or "unknown"


def is_https():
    if desk().config["server"]["trust_proxy_headers"]:
        return request.urlparts.scheme == "https"  # honours X-Forwarded-Proto
    return request.environ.get("wsgi.url_scheme") == "https"


# --- Sessions and CSRF -----------------------------------------------------------


def _signed(purpose, payload):
    return f"{payload}.{desk().sign(purpose, payload)}"


def _unsigned(purpose, value):
    """The payload of a value made by _signed, or None when the signature is wrong."""
    payload, _, signature = (value or "").rpartition(".")
    if not payload or not hmac.compare_digest(signature.encode(), desk().sign(purpose, payload).encode()):
        return None
    return payload


def _set_cookie(name, value, max_age):
    response.set_cookie(name, value, path="/", max_age=max_age, httponly=True, samesite="lax", secure=is_https())


def _delete_cookie(name):
    response.delete_cookie(name, path="/", httponly=True, samesite="lax", secure=is_https())


def start_session():
    nonce = secrets.token_urlsafe(24)
    _set_cookie(SESSION_COOKIE, _signed("session", f"{int(desk().clock())}.{nonce}"), desk().session_seconds)
    return nonce


def current_session():
    """(issued, nonce) of a valid, unexpired, not-logged-out session cookie, else None."""
    cached = request.environ.get("milesahead.session", False)
    if cached is not False:
        return cached
    session = None
    payload = _unsigned("session", request.get_cookie(SESSION_COOKIE))
    if payload:
        issued, _, nonce = payload.partition(".")
        if issued.isdigit() and nonce:
            age = desk().clock() - int(issued)
            if -CLOCK_SKEW_SECONDS <= age < desk().session_seconds and not desk().is_revoked(site.db(), nonce):
                session = (int(issued), nonce)
    request.environ["milesahead.session"] = session
    return session


def csrf_token():
    session = current_session()
    return desk().sign("csrf", session[1]) if session else ""


def csrf_ok(sent):
    expected = csrf_token()
    return bool(expected and sent) and hmac.compare_digest(sent.encode(), expected.encode())


def login_nonce():
    """The nonce of the pre-login cookie behind the login form's CSRF token (made when missing)."""
    payload = _unsigned("login", request.get_cookie(LOGIN_COOKIE))
    if payload:
        issued, _, nonce = payload.partition(".")
        if issued.isdigit() and 0 <= desk().clock() - int(issued) < LOGIN_FORM_SECONDS:
            return nonce
    nonce = secrets.token_urlsafe(24)
    _set_cookie(LOGIN_COOKIE, _signed("login", f"{int(desk().clock())}.{nonce}"), LOGIN_FORM_SECONDS)
    return nonce


def flash(message):
    encoded = base64.urlsafe_b64encode(message.encode()).decode()
    _set_cookie(FLASH_COOKIE, _signed("flash", encoded), 300)


def take_flash():
    payload = _unsigned("flash", request.get_cookie(FLASH_COOKIE))
    if request.get_cookie(FLASH_COOKIE):
        _delete_cookie(FLASH_COOKIE)
    if not payload:
        return ""
    try:
        return base64.urlsafe_b64decode(payload.encode()).decode()
    except ValueError:
        return ""


# --- Guards and rendering ------------------------------------------------------------


def private_headers(frame="DENY"):
    response.set_header("Cache-Control", "no-store")
    response.set_header("X-Robots-Tag", "noindex, nofollow")
    response.set_header("X-Frame-Options", frame)
    response.set_header("Referrer-Policy", "same-origin")


def render(name, title, status=200, **values):
    private_headers()
    response.status = status
    values.setdefault("csrf_token", csrf_token())
    values.setdefault("logged_in", current_session() is not None)
    values.setdefault("flash", take_flash() if status == 200 else "")
    values.setdefault("labels", workflow.STATUS_LABELS)
    values.update(display=display)  # times, the diff, candidates and failures, as people read them
    return site.render(name, title, "The milesahead editorial desk.", **values)


def refuse(status, message, back="/admin"):
    """An admin error page (HTML) that links back to where the editor was."""
    body = render(
        "admin/error", site.ERROR_TITLES.get(status, "Error"), status=status, code=status, message=message, back=back
    )
    raise_response(body, status)


def raise_response(body, status):
    """Stop the handler with this body, keeping the headers and cookies set so far."""
    res = response.copy(cls=bottle.HTTPResponse)
    res.status = status
    res.body = body
    raise res


def editor_page(handler):
    """HTML desk pages: open desk, valid session (else the login page), CSRF on POST."""

    @functools.wraps(handler)
    def guarded(*args, **kwargs):
        reason = closed_reason()
        if reason:
            return render("admin/closed", "Editorial desk closed", status=503, reason=reason)
        if current_session() is None:
            if request.method == "POST":
                refuse(
                    401,
                    "Your session has expired or you have logged out. Log in again, then retry.",
                    back="/admin/login",
                )
            bottle.redirect("/admin/login?next=" + bottle.urlquote(request.fullpath))
        if request.method == "POST" and not csrf_ok(request.forms.get("csrf_token", "")):
            refuse(403, "This form did not carry a valid security token (CSRF). Reload the page and try again.")
        return handler(*args, **kwargs)

    return guarded


def form():
    return request.forms.decode()  # UTF-8 values (bottle's default is latin-1); app.check_request vetted them


def safe_next(target):
    """Only ever return to a desk page on this site after login."""
    if target and target.startswith("/admin") and not target.startswith("//") and "\\" not in target:
        return target
    return "/admin"


def load_article(article_id):
    article = store.get_article(site.db(), article_id)
    if article is None:
        bottle.abort(404, f"No article with id {article_id}.")
    return article


# --- Pages ---------------------------------------------------------------------


def login_page():
    reason = closed_reason()
    if reason:
        return render("admin/closed", "Editorial desk closed", status=503, reason=reason)
    if current_session() is not None:
        bottle.redirect(safe_next(request.query.get("next")))
    return login_form(next_url=request.query.get("next", ""))


def login_form(status=200, error="", next_url=""):
    token = desk().sign("login-csrf", login_nonce())
    return render(
        "admin/login", "Editor login", status=status, error=error, login_token=token, next_url=safe_next(next_url)
    )


def login_submit():
    reason = closed_reason()
    if reason:
        return render("admin/closed", "Editorial desk closed", status=503, reason=reason)
    the_desk, client, now = desk(), client_address(), desk().clock()
    data = form()
    wait = the_desk.throttle.retry_after(client, now)
    if wait:
        metrics.LOGIN_FAILURES.labels(reason="throttled").inc()
        log.warning("admin login from %s refused: throttled for %ss more", client, wait)
        response.set_header("Retry-After", str(wait))
        return login_form(429, f"Too many failed attempts. Try again in {wait} seconds.", data.get("next", ""))
    payload = _unsigned("login", request.get_cookie(LOGIN_COOKIE))
    nonce = payload.partition(".")[2] if payload else ""
    sent = data.get("csrf_token", "")
    expected = the_desk.sign("login-csrf", nonce) if nonce else ""
    if not (expected and sent and hmac.compare_digest(sent.encode(), expected.encode())):
        metrics.LOGIN_FAILURES.labels(reason="csrf").inc()
        log.warning("admin login from %s refused: missing or wrong CSRF token", client)
        refuse(
            403,
            "The login form expired or did not come from this site. Reload the login page and try again.",
            back="/admin/login",
        )
    busy = the_desk.throttle.password_check(now)
    if busy:
        metrics.LOGIN_FAILURES.labels(reason="throttled").inc()
        log.warning("admin login from %s refused: the minute's password checks are used up", client)
        response.set_header("Retry-After", str(busy))
        message = f"Too many login attempts on this site right now. Try again in {busy} seconds."
        return login_form(429, message, data.get("next", ""))
    if not check_password(data.get("password", "")):
        failures, delay = the_desk.throttle.failure(client, now)
        metrics.LOGIN_FAILURES.labels(reason="wrong_password").inc()
        log.warning(
            "admin login from %s failed: wrong password (%d in a row%s)",
            client,
            failures,
            f"; locked for {delay}s" if delay else "",
        )
        message = "Wrong password."
        if delay:
            message += f" Too many failed attempts: wait {delay} seconds before the next try."
        return login_form(401, message, data.get("next", ""))
    the_desk.throttle.success(client)
    start_session()
    _delete_cookie(LOGIN_COOKIE)
    log.info("admin login from %s", client)
    bottle.redirect(safe_next(data.get("next")))


@editor_page
def logout():
    issued, nonce = current_session()
    desk().revoke(site.db(), nonce, issued)
    _delete_cookie(SESSION_COOKIE)
    log.info("admin logout from %s", client_address())
    bottle.redirect("/admin/login")


@editor_page
def queues():
    conn = site.db()
    selected = request.query.get("status", "")
    if selected and selected not in store.ARTICLE_STATUSES:
        bottle.abort(400, f"status must be one of {', '.join(store.ARTICLE_STATUSES)}")
    statuses = [selected] if selected else QUEUE_ORDER
    lists = [(s, workflow.list_by_status(conn, s, limit=500 if selected else 20)) for s in statuses]
    return render(
        "admin/queues",
        "Editorial desk",
        counts=workflow.status_counts(conn),
        order=QUEUE_ORDER,
        lists=lists,
        selected=selected,
        runs=store.list_runs(conn, 5),
        pipeline=pipeline_status(),
    )


# The order the desk works in: what needs a decision first.
QUEUE_ORDER = ["pending", "draft", "revision_requested", "approved", "unpublished", "rejected"]


@editor_page
def review(article_id):
    conn = site.db()
    article = load_article(article_id)
    history = workflow.revisions(conn, article_id)
    diff_from, diff_to, diff = choose_diff(history)
    return render(
        "admin/article",
        f"Review: {article['title']}",
        article=article,
        targets=workflow.allowed_targets(article["status"]),
        actions={target: action for action, target in ACTIONS.items()},
        cards=workflow.find_cards(conn, article),
        linked=store.article_linked_cards(conn, article_id),
        revisions=history,
        events=workflow.events(conn, article_id),
        diff=diff,
        diff_from=diff_from,
        diff_to=diff_to,
        types=store.ARTICLE_TYPES,
        key_details_text="\n".join(f"{label}: {value}" for label, value in article["key_details"]),
    )


def choose_diff(history, query=None):
    """The two revisions to compare: ?from=&to= (numbers), else the latest against the one before."""
    query = request.query if query is None else query
    if len(history) < 2:
        return None, None, []
    by_number = {r["number"]: r for r in history}
    try:
        new = int(query.get("to") or history[-1]["number"])
        old = int(query.get("from") or new - 1)
    except ValueError:
        bottle.abort(400, "from and to must be revision numbers")
    if old not in by_number or new not in by_number:
        bottle.abort(404, "No such revision.")
    return old, new, workflow.diff_revisions(by_number[old], by_number[new])


@editor_page
def preview(article_id):
    """Exactly the reader's article page, for any status (framed by the review page)."""
    article = load_article(article_id)
    body = site.render_article(article)
    private_headers(frame="SAMEORIGIN")
    response.set_header("Content-Security-Policy", site.PREVIEW_CSP)
    return body


# --- Actions ---------------------------------------------------------------------


@contextlib.contextmanager
def reader_pages_of(article_id):
    """Around a change to an article: afterwards re-render exactly the reader pages it
    touched, as they were before (the old slug, cards it no longer links) and after.

    Both sets are read inside the change's own write transaction: read outside it,
    an unpublish racing an approve saw the article before the approve committed,
    found no pages to take down, and left it public. Inside, every commit is followed
    by a publish of the pages it changed, rendered after it, so public/ ends as a full
    publish of the committed database would leave it, whatever the interleaving.

    The change is saved first; a publish that fails is logged and told to the editor
    (the next full publish, at the latest the next restart, catches up) but never
    undoes the change.
    """
    conn = site.db()
    with store.transaction(conn):  # workflow's own writes join it
        before = publish.article_pages(conn, article_id)
        yield
        pages = before | publish.article_pages(conn, article_id)
    if not pages:
        return
    try:
        site.publisher().publish(pages)
    except Exception as e:
        log.exception("re-publishing the pages of article %s failed", article_id)
        request.environ["milesahead.publish_error"] = str(e) or type(e).__name__


def publish_problem():
    """What the editor must know when the reader pages did not follow a change."""
    error = request.environ.get("milesahead.publish_error")
    return f" But the reader pages could not be updated ({error}); run `python app.py publish`." if error else ""


@editor_page
def act(article_id, action):
    target = ACTIONS[action]
    feedback = form().get("feedback", "")
    back = f"/admin/articles/{article_id}"
    try:
        with reader_pages_of(article_id):
            workflow.transition(site.db(), article_id, target, EDITOR, feedback=feedback)
    except workflow.ArticleNotFound as e:
        bottle.abort(404, str(e))
    except workflow.TransitionRefused as e:
        refuse(409, str(e), back=back)
    except ValueError as e:
        refuse(400, str(e), back=back)
    flash(DONE[target] + publish_problem())
    bottle.redirect(back)


def string_field(data, name, default=""):
    """data[name] as a string: JSON may send any type, and the message names the field."""
    value = data.get(name)
    if value is None:
        return default
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string, not {json_type(value)}")
    return value


def json_type(value):
    return {dict: "an object", list: "a list", bool: "true or false"}.get(type(value), "a number")


def edited_fields(data):
    """Fields present in an edit (form or JSON); key details arrive as 'Label: value' lines."""
    fields = {k: string_field(data, k) for k in ("title", "tldr", "type", "body_html", "persona_take") if k in data}
    if "key_details" in data:
        value = data["key_details"]
        if isinstance(value, str):
            pairs = []
            for line in value.splitlines():
                if not line.strip():
                    continue
                label, sep, text = line.partition(":")
                if not sep or not label.strip():
                    raise ValueError(f"Key details: write each line as 'Label: value' (got {line.strip()!r}).")
                pairs.append([label.strip(), text.strip()])
            value = pairs
        elif not (
            isinstance(value, list)
            and all(isinstance(p, list) and len(p) == 2 and all(isinstance(t, str) for t in p) for p in value)
        ):
            raise ValueError("key_details must be a list of [label, value] pairs of strings")
        fields["key_details"] = [list(p) for p in value]
    return fields


def apply_edit(article_id, data, actor):
    """Shared by the form and the API: returns (article, changed field names)."""
    conn = site.db()
    article = load_article(article_id)
    changes = workflow.changed_fields(article, edited_fields(data))
    if not changes:
        return article, []
    note = string_field(data, "note").strip() or "edited by hand"
    with reader_pages_of(article_id):
        article = workflow.revise(conn, article_id, actor, note=note, **changes)
    return article, sorted(changes)


@editor_page
def edit(article_id):
    back = f"/admin/articles/{article_id}"
    try:
        article, changed = apply_edit(article_id, form(), EDITOR)
    except ValueError as e:
        refuse(400, str(e), back=back)
    if changed:
        live = " The article is live: readers see the change now." if article["status"] == "approved" else ""
        flash(f"Saved as a new revision ({', '.join(changed)}).{live}{publish_problem()}")
    else:
        flash("Nothing changed, so no new revision was made.")
    bottle.redirect(back)


# --- Pipeline runs -------------------------------------------------------------------


def pipeline_status():
    """(configured, reason) without ever failing the page."""
    try:
        return pipeline.is_configured(desk().config)
    except Exception as e:
        log.exception("pipeline status check failed")
        return False, f"The pipeline's configuration could not be read: {e}"


def trigger_run():
    """Returns (started?, message)."""
    configured, reason = pipeline_status()
    if not configured:
        return False, f"Pipeline not configured: {reason}"
    try:
        return pipeline.trigger_run(desk().config, trigger="admin")
    except Exception as e:
        log.exception("pipeline trigger failed")
        return False, f"The pipeline could not start: {e}"


@editor_page
def runs_page():
    return render("admin/runs", "Pipeline runs", runs=store.list_runs(site.db(), 50), pipeline=pipeline_status())


@editor_page
def cards_page():
    """The same list as `app.py cards-report`: cards whose facts or sources are oldest first."""
    return render("admin/cards", "Card facts", report=store.cards_report(site.db()))


@editor_page
def start_run():
    _, message = trigger_run()
    flash(message)
    bottle.redirect("/admin/runs")


# --- JSON API ------------------------------------------------------------------------
# Same actions, same rules. Authenticate with the session cookie plus an
# X-CSRF-Token header on POST (GET /api/admin/session gives the token), or with
# `Authorization: Bearer <admin.api_token>` for scripts.


def api_error(status, message, **extra):
    private_headers()
    response.content_type = "application/json"
    body = json.dumps({"error": site.ERROR_TITLES.get(status, "Error"), "message": message, "status": status, **extra})
    raise_response(body, status)


def api_actor():
    """Who is calling the API, or an error response: token first, then the session cookie."""
    token = desk().config["admin"]["api_token"]
    header = request.get_header("Authorization", "")
    if header and not token:  # no token to guess: refused, and nobody's budget is touched
        metrics.LOGIN_FAILURES.labels(reason="bad_token").inc()
        api_error(401, "admin.api_token is not set, so the API takes no tokens: log in at /admin/login instead.")
    if header:
        scheme, _, sent = header.partition(" ")
        client, now = client_address(), desk().clock()
        wait = desk().throttle.retry_after(client, now)
        if wait:
            metrics.LOGIN_FAILURES.labels(reason="throttled").inc()
            response.set_header("Retry-After", str(wait))
            api_error(429, f"Too many failed attempts. Try again in {wait} seconds.")
        if scheme.lower() == "bearer" and hmac.compare_digest(sent.strip().encode(), token.encode()):
            return f"{EDITOR} (api token)"
        desk().throttle.failure(client, now)
        metrics.LOGIN_FAILURES.labels(reason="bad_token").inc()
        log.warning("admin API token refused from %s", client)
        api_error(401, "The API token is wrong.")
    if closed_reason():
        api_error(503, closed_reason())
    if current_session() is None:
        api_error(401, "Log in at /admin/login (session cookie) or send Authorization: Bearer <admin.api_token>.")
    if request.method == "POST":
        sent = request.get_header("X-CSRF-Token", "") or request.forms.get("csrf_token", "")
        if not csrf_ok(sent):
            api_error(403, "Missing or wrong CSRF token: send the X-CSRF-Token header from GET /api/admin/session.")
    return EDITOR


def api(handler):
    @functools.wraps(handler)
    def guarded(*args, **kwargs):
        actor = api_actor()
        status, data = handler(*args, actor=actor, **kwargs)
        private_headers()
        return site.json_response(data, status)

    return guarded


def api_body():
    try:
        data = request.json
    except RecursionError:  # the parser's own limit on nesting
        api_error(400, "The JSON is nested too deeply.")
    if data is not None:
        if not isinstance(data, dict):
            api_error(400, "Send a JSON object.")
        return data
    return dict(form())


def api_text(name):
    """A string field of the API body, or a 400 that names it."""
    try:
        return string_field(api_body(), name)
    except ValueError as e:
        api_error(400, str(e))


def api_article_data(conn, article):
    data = site.with_safe_urls(article)
    data["allowed_transitions"] = list(workflow.allowed_targets(article["status"]))
    data["linked_cards"] = store.article_linked_cards(conn, article["id"])
    data["mentioned_cards"] = [card["slug"] for card in workflow.find_cards(conn, article)]
    return data


def api_load(article_id):
    article = store.get_article(site.db(), article_id)
    if article is None:
        api_error(404, f"No article with id {article_id}.")
    return article


@api
def api_session(actor):
    session = current_session()
    if session is None:
        return 200, {"actor": actor, "csrf_token": None}
    return 200, {"actor": actor, "csrf_token": csrf_token(), "expires_at": session[0] + desk().session_seconds}


@api
def api_articles(actor):
    conn = site.db()
    status = request.query.get("status", "")
    if status and status not in store.ARTICLE_STATUSES:
        api_error(400, f"status must be one of {', '.join(store.ARTICLE_STATUSES)}")
    try:
        limit = min(max(int(request.query.get("limit", 100)), 1), 1000)
    except ValueError:
        api_error(400, "limit must be a whole number")
    statuses = [status] if status else store.ARTICLE_STATUSES
    articles = [a for s in statuses for a in workflow.list_by_status(conn, s, limit)]
    return 200, {"counts": workflow.status_counts(conn), "articles": articles}


@api
def api_article(article_id, actor):
    conn = site.db()
    data = api_article_data(conn, api_load(article_id))
    data["events"] = workflow.events(conn, article_id)
    data["revisions"] = workflow.revisions(conn, article_id)
    return 200, data


@api
def api_diff(article_id, actor):
    api_load(article_id)
    history = workflow.revisions(site.db(), article_id)
    old, new, changes = choose_diff(history)
    return 200, {"from": old, "to": new, "changes": changes}


def api_move(article_id, target, actor, feedback):
    conn = site.db()
    try:
        with reader_pages_of(article_id):
            article = workflow.transition(conn, article_id, target, actor, feedback=feedback)
    except workflow.ArticleNotFound as e:
        api_error(404, str(e))
    except workflow.TransitionRefused as e:
        api_error(409, str(e), current=e.current, target=e.target)
    except ValueError as e:
        api_error(400, str(e))
    return 200, with_publish_error(api_article_data(conn, article))


def with_publish_error(data):
    if request.environ.get("milesahead.publish_error"):
        data["publish_error"] = request.environ["milesahead.publish_error"]
    return data


@api
def api_transition(article_id, actor):
    target = api_text("to") if "to" in api_body() else api_text("status")
    return api_move(article_id, target, actor, api_text("feedback"))


@api
def api_action(article_id, action, actor):
    return api_move(article_id, ACTIONS[action], actor, api_text("feedback"))


@api
def api_edit(article_id, actor):
    api_load(article_id)
    try:
        article, changed = apply_edit(article_id, api_body(), actor)
    except ValueError as e:
        api_error(400, str(e))
    data = api_article_data(site.db(), article)
    data["changed"] = changed
    return 200, with_publish_error(data)


@api
def api_runs(actor):
    configured, reason = pipeline_status()
    return 200, {"configured": configured, "reason": reason, "runs": store.list_runs(site.db(), 50)}


@api
def api_start_run(actor):
    started, message = trigger_run()
    return (202 if started else 409), {"started": started, "message": message}


# --- Routes ----------------------------------------------------------------------------

ACTION_RULE = "<action:re:" + "|".join(ACTIONS) + ">"
ROUTES = [
    ("GET", "/admin/login", login_page),
    ("POST", "/admin/login", login_submit),
    ("POST", "/admin/logout", logout),
    ("GET", "/admin", queues),
    ("GET", "/admin/", queues),
    ("GET", "/admin/articles/<article_id:int>", review),
    ("GET", "/admin/articles/<article_id:int>/preview", preview),
    ("POST", "/admin/articles/<article_id:int>/edit", edit),
    ("POST", f"/admin/articles/<article_id:int>/{ACTION_RULE}", act),
    ("GET", "/admin/runs", runs_page),
    ("POST", "/admin/runs", start_run),
    ("GET", "/admin/cards", cards_page),
    ("GET", "/api/admin/session", api_session),
    ("GET", "/api/admin/articles", api_articles),
    ("GET", "/api/admin/articles/<article_id:int>", api_article),
    ("GET", "/api/admin/articles/<article_id:int>/diff", api_diff),
    ("POST", "/api/admin/articles/<article_id:int>/transition", api_transition),
    ("POST", "/api/admin/articles/<article_id:int>/edit", api_edit),
    ("POST", f"/api/admin/articles/<article_id:int>/{ACTION_RULE}", api_action),
    ("GET", "/api/admin/runs", api_runs),
    ("POST", "/api/admin/runs", api_start_run),
]


def install(app):
    """Add the desk to the app: its state and its routes."""
    app.config["milesahead.desk"] = Desk(app.config["milesahead.config"])
    for method, path, handler in ROUTES:
        app.route(path, method, handler)
