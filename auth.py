"""The desk's door: the password, the login throttle, the session secret, sessions,
CSRF tokens, flash messages, and the guards every desk page and API call passes.

Sections, top to bottom: login state (throttle, secret), sessions, CSRF and flash,
guards and private pages, login and logout, the API's guard, routes.

Security in brief: the password is checked against a bcrypt hash from config
(no hash, no desk); the session is a cookie `issued.nonce.hmac` signed with the
session secret and expiring after admin.session_hours; every POST carries a
CSRF token derived from the session (or, on the login form, from a short-lived
signed pre-login cookie); failed logins are throttled per client address, and
password checks for the account are capped per minute, whatever the address.
What the desk does once the editor is in is desk.py.
"""

import base64
import collections
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

import display
import metrics
import store
import web
import workflow

log = logging.getLogger("milesahead.admin")

SESSION_COOKIE = "milesahead_admin"
LOGIN_COOKIE = "milesahead_login"
FLASH_COOKIE = "milesahead_flash"
LOGIN_FORM_SECONDS = 2 * 3600
CLOCK_SKEW_SECONDS = 60
EDITOR = "editor"


# --- Login state ----------------------------------------------------------------


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


class Auth:
    """Everything the desk's login keeps per app (web.State.auth): config, secret, throttle, clock.

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
        expires_at = issued + self.session_seconds + CLOCK_SKEW_SECONDS
        store.revoke_session(conn, nonce, expires_at, int(self.clock()))

    def is_revoked(self, conn, nonce):
        return store.is_session_revoked(conn, nonce)


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
        raise web.CommandError(
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
    raise web.CommandError(f"{path}: session secret file is empty or too short; delete it to have a new one made")


def auth():
    """This app's login state."""
    return web.state().auth


def password_hash():
    return auth().config["admin"]["password_hash"].strip()


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
    if auth().config["server"]["trust_proxy_headers"]:
        return request.urlparts.scheme == "https"  # honours X-Forwarded-Proto
    return request.environ.get("wsgi.url_scheme") == "https"


# --- Sessions and CSRF -----------------------------------------------------------


def _signed(purpose, payload):
    return f"{payload}.{auth().sign(purpose, payload)}"


def _unsigned(purpose, value):
    """The payload of a value made by _signed, or None when the signature is wrong."""
    payload, _, signature = (value or "").rpartition(".")
    if not payload or not hmac.compare_digest(signature.encode(), auth().sign(purpose, payload).encode()):
        return None
    return payload


def _set_cookie(name, value, max_age):
    response.set_cookie(name, value, path="/", max_age=max_age, httponly=True, samesite="lax", secure=is_https())


def _delete_cookie(name):
    response.delete_cookie(name, path="/", httponly=True, samesite="lax", secure=is_https())


def start_session():
    nonce = secrets.token_urlsafe(24)
    _set_cookie(SESSION_COOKIE, _signed("session", f"{int(auth().clock())}.{nonce}"), auth().session_seconds)
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
            age = auth().clock() - int(issued)
            if -CLOCK_SKEW_SECONDS <= age < auth().session_seconds and not auth().is_revoked(web.db(), nonce):
                session = (int(issued), nonce)
    request.environ["milesahead.session"] = session
    return session


def csrf_token():
    session = current_session()
    return auth().sign("csrf", session[1]) if session else ""


def csrf_ok(sent):
    expected = csrf_token()
    return bool(expected and sent) and hmac.compare_digest(sent.encode(), expected.encode())


def login_nonce():
    """The nonce of the pre-login cookie behind the login form's CSRF token (made when missing)."""
    payload = _unsigned("login", request.get_cookie(LOGIN_COOKIE))
    if payload:
        issued, _, nonce = payload.partition(".")
        if issued.isdigit() and 0 <= auth().clock() - int(issued) < LOGIN_FORM_SECONDS:
            return nonce
    nonce = secrets.token_urlsafe(24)
    _set_cookie(LOGIN_COOKIE, _signed("login", f"{int(auth().clock())}.{nonce}"), LOGIN_FORM_SECONDS)
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


# --- Guards and private pages ------------------------------------------------------------


def private_headers(frame="DENY"):
    response.set_header("Cache-Control", "no-store")
    response.set_header("X-Robots-Tag", "noindex, nofollow")
    response.set_header("X-Frame-Options", frame)
    response.set_header("Referrer-Policy", "same-origin")


def render(name, title, status=200, **values):
    """A desk page: private (never cached or indexed), with the session's CSRF token and flash."""
    private_headers()
    response.status = status
    values.setdefault("csrf_token", csrf_token())
    values.setdefault("logged_in", current_session() is not None)
    values.setdefault("flash", take_flash() if status == 200 else "")
    values.setdefault("labels", workflow.STATUS_LABELS)
    values.update(display=display)  # times, the diff, candidates and failures, as people read them
    return web.render(name, title, "The milesahead editorial desk.", **values)


def refuse(status, message, back="/admin"):
    """An admin error page (HTML) that links back to where the editor was."""
    body = render(
        "admin/error", web.ERROR_TITLES.get(status, "Error"), status=status, code=status, message=message, back=back
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


def safe_next(target):
    """Only ever return to a desk page on this site after login."""
    if target and target.startswith("/admin") and not target.startswith("//") and "\\" not in target:
        return target
    return "/admin"


# --- Login and logout ----------------------------------------------------------


def login_page():
    reason = closed_reason()
    if reason:
        return render("admin/closed", "Editorial desk closed", status=503, reason=reason)
    if current_session() is not None:
        bottle.redirect(safe_next(request.query.get("next")))
    return login_form(next_url=request.query.get("next", ""))


def login_form(status=200, error="", next_url=""):
    token = auth().sign("login-csrf", login_nonce())
    return render(
        "admin/login", "Editor login", status=status, error=error, login_token=token, next_url=safe_next(next_url)
    )


def login_submit():
    reason = closed_reason()
    if reason:
        return render("admin/closed", "Editorial desk closed", status=503, reason=reason)
    login, client, now = auth(), client_address(), auth().clock()
    data = web.form()
    wait = login.throttle.retry_after(client, now)
    if wait:
        metrics.LOGIN_FAILURES.labels(reason="throttled").inc()
        log.warning("admin login from %s refused: throttled for %ss more", client, wait)
        response.set_header("Retry-After", str(wait))
        return login_form(429, f"Too many failed attempts. Try again in {wait} seconds.", data.get("next", ""))
    payload = _unsigned("login", request.get_cookie(LOGIN_COOKIE))
    nonce = payload.partition(".")[2] if payload else ""
    sent = data.get("csrf_token", "")
    expected = login.sign("login-csrf", nonce) if nonce else ""
    if not (expected and sent and hmac.compare_digest(sent.encode(), expected.encode())):
        metrics.LOGIN_FAILURES.labels(reason="csrf").inc()
        log.warning("admin login from %s refused: missing or wrong CSRF token", client)
        refuse(
            403,
            "The login form expired or did not come from this site. Reload the login page and try again.",
            back="/admin/login",
        )
    busy = login.throttle.password_check(now)
    if busy:
        metrics.LOGIN_FAILURES.labels(reason="throttled").inc()
        log.warning("admin login from %s refused: the minute's password checks are used up", client)
        response.set_header("Retry-After", str(busy))
        message = f"Too many login attempts on this site right now. Try again in {busy} seconds."
        return login_form(429, message, data.get("next", ""))
    if not check_password(data.get("password", "")):
        failures, delay = login.throttle.failure(client, now)
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
    login.throttle.success(client)
    start_session()
    _delete_cookie(LOGIN_COOKIE)
    log.info("admin login from %s", client)
    bottle.redirect(safe_next(data.get("next")))


@editor_page
def logout():
    issued, nonce = current_session()
    auth().revoke(web.db(), nonce, issued)
    _delete_cookie(SESSION_COOKIE)
    log.info("admin logout from %s", client_address())
    bottle.redirect("/admin/login")


# --- The API's guard ------------------------------------------------------------------
# The desk's JSON API (desk.py): same actions, same rules. Authenticate with the session cookie plus an
# X-CSRF-Token header on POST (GET /api/admin/session gives the token), or with
# `Authorization: Bearer <admin.api_token>` for scripts.


def api_error(status, message, **extra):
    private_headers()
    response.content_type = "application/json"
    body = json.dumps({"error": web.ERROR_TITLES.get(status, "Error"), "message": message, "status": status, **extra})
    raise_response(body, status)


def api_actor():
    """Who is calling the API, or an error response: token first, then the session cookie."""
    token = auth().config["admin"]["api_token"]
    header = request.get_header("Authorization", "")
    if header and not token:  # no token to guess: refused, and nobody's budget is touched
        metrics.LOGIN_FAILURES.labels(reason="bad_token").inc()
        api_error(401, "admin.api_token is not set, so the API takes no tokens: log in at /admin/login instead.")
    if header:
        scheme, _, sent = header.partition(" ")
        client, now = client_address(), auth().clock()
        wait = auth().throttle.retry_after(client, now)
        if wait:
            metrics.LOGIN_FAILURES.labels(reason="throttled").inc()
            response.set_header("Retry-After", str(wait))
            api_error(429, f"Too many failed attempts. Try again in {wait} seconds.")
        if scheme.lower() == "bearer" and hmac.compare_digest(sent.strip().encode(), token.encode()):
            return f"{EDITOR} (api token)"
        auth().throttle.failure(client, now)
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
        return web.json_response(data, status)

    return guarded


# --- Routes ----------------------------------------------------------------------------

ROUTES = [
    ("GET", "/admin/login", login_page),
    ("POST", "/admin/login", login_submit),
    ("POST", "/admin/logout", logout),
]
