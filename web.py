"""What every web handler shares: the app's state, the per-request database, rendering,
security headers, JSON answers and error pages.

Sections, top to bottom: state, security headers, per-request database, rendering,
what the reader's and the desk's pages both show of an article, JSON, errors.

The reader's pages (app.py) and the editorial desk (auth.py, desk.py) both build on this
module; it imports neither of them. An app's state is one `State` object on the Bottle
app (`app.state`), never string keys in `app.config`.
"""

import hashlib
import html
import json
import os
import threading

import bottle
from bottle import request, response

import display
import store
import urls

HERE = os.path.dirname(os.path.abspath(__file__))
VIEWS = os.path.join(HERE, "views")
# One list object for every render: Bottle caches compiled templates keyed by its id().
TEMPLATE_LOOKUP = [VIEWS]
STATIC = os.path.join(HERE, "static")
# Reader pages may be cached this long; Caddy sends the same for the published files.
PAGE_CACHE = "public, max-age=60"
HTML = "text/html; charset=utf-8"


# --- State -------------------------------------------------------------------


class CommandError(Exception):
    """An operational problem the operator must fix; app.main() prints it as one line."""


class State:
    """What one app keeps between requests (`app.state`): its config, the release it runs,
    its publisher (publish.py), how the start-up publish went, and the desk's login state.

    startup_publish is None (serve has not started one), "running", "ok" or the error;
    /healthz answers 503 until it is "ok" or None.
    """

    def __init__(self, config, release, commit):
        self.config = config
        self.release = release
        self.commit = commit
        self.publisher = None  # a publish.Publisher, set by app.create_app
        self.startup_publish = None
        self.auth = None  # an auth.Auth, set by desk.install


def state(app=None):
    """The state of `app`, or of the app answering this request."""
    return (app or request.app).state


def cfg():
    return state().config


def publisher(app=None):
    return state(app).publisher


# --- Security headers --------------------------------------------------------
# Sent by the app on every answer, so `make run` and the tests see what production
# sends; Caddy's site (infra/templates/site.caddy.j2) sends the same for the files it
# serves itself and keeps the app's own (tests/test_caddy_site.py holds the two equal).

# Reader pages carry no script at all, and load only their own stylesheet and images.
READER_CSP = (
    "default-src 'none'; script-src 'none'; style-src 'self'; img-src 'self' https: http: data:; "
    "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
# The desk: only its own scripts, styles and forms; it frames only its own preview.
DESK_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' https: http: data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# The desk's preview of a reader page: framed by the desk alone, and sandboxed even when
# opened on its own (an opaque origin: nothing in it could read the desk's session).
PREVIEW_CSP = READER_CSP.replace("frame-ancestors 'none'", "frame-ancestors 'self'") + "; sandbox"
SECURITY_HEADERS = [
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "strict-origin-when-cross-origin"),
    ("Permissions-Policy", "camera=(), microphone=(), geolocation=()"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
]


def is_desk_path(path):
    return path in ("/admin", "/api/admin") or path.startswith(("/admin/", "/api/admin/"))


def with_security_headers(wsgi):
    """Add the security headers a handler did not set itself (the desk's preview sets its own).

    A WSGI wrapper, like metrics.instrument, so the 500 of an unhandled exception gets
    them too (Bottle's hooks run before it replaces the response).
    """

    def secured(environ, start_response):
        wanted = [("Content-Security-Policy", READER_CSP), *SECURITY_HEADERS]
        if is_desk_path(environ.get("PATH_INFO", "")):
            # A desk URL names drafts: it never goes to another site as a referrer.
            wanted = [("Content-Security-Policy", DESK_CSP), ("Referrer-Policy", "same-origin"), *SECURITY_HEADERS]

        def add_missing(status, headers, exc_info=None):
            present = {name.lower() for name, _value in headers}
            for name, value in wanted:
                if name.lower() not in present:
                    headers = [*headers, (name, value)]
                    present.add(name.lower())
            return start_response(status, headers, exc_info)

        return wsgi(environ, add_missing)

    return secured


# --- Per-request database ----------------------------------------------------
# Opening a WAL database costs ~2 ms (it maps the shared-memory index), ten times
# the rest of a page. So each waitress worker thread keeps one connection per
# database file and reuses it; no transaction outlives a request (see end_request).

_thread = threading.local()


def db():
    """This thread's connection to the configured database."""
    path = cfg()["database"]["path"]
    connections = _thread.__dict__.setdefault("connections", {})
    if path not in connections:
        connections[path] = store.connect(path)
    return connections[path]


def check_request():
    """Refuse, before any route or login check, what no handler could read: a body over
    server.max_body_bytes (413), and text that is not UTF-8 (400) in the query, a form
    or a declared charset. Caught here, a stray byte is a 400 on every route, never a
    500 and a logged traceback in whichever handler first decodes it."""
    limit = cfg()["server"]["max_body_bytes"]
    if request.content_length > limit:
        bottle.abort(413, f"Request bodies are limited to {limit:,} bytes.")
    content_type = request.content_type.lower()
    charset = content_type.partition("charset=")[2].split(";")[0].strip().strip('"')
    if charset and charset not in ("utf-8", "utf8"):
        bottle.abort(400, f"Send text as UTF-8, not {charset}.")
    try:
        request.query.decode()
        if request.content_length and not content_type.startswith("application/json"):
            request.forms.decode()  # what every handler reads; JSON is checked by its parser
    except UnicodeError:
        bottle.abort(400, "The request is not valid UTF-8.")


def form():
    """The form's values as UTF-8 (bottle's default is latin-1); check_request vetted them."""
    return request.forms.decode()


def end_request():
    """Never let a transaction leak into the next request on this thread."""
    connection = _thread.__dict__.get("connections", {}).get(cfg()["database"]["path"])
    if connection is not None and connection.in_transaction:
        connection.rollback()


# --- Rendering ---------------------------------------------------------------


def render(name, title, description="", **values):
    """Render a template with what every page's <head> needs (title, canonical, OG)."""
    site = cfg()["site"]
    values.setdefault("og_image", "")
    values.setdefault("og_type", "website")
    return bottle.template(
        name,
        template_lookup=TEMPLATE_LOOKUP,
        site=site,
        persona=site["persona_name"],
        page_title=title,
        description=description or site["description"],
        canonical=absolute_url(request.path),
        path=request.path,
        format_date=display.format_date,
        static_url=static_url,
        safe_url=urls.safe_url,
        image_src=urls.safe_image_src,
        outside_link=outside_link,
        **values,
    )


def outside_link(url, text=""):
    """An <a> to an outside URL the one URL policy keeps (urls.py); otherwise only its text.

    Every href a template prints from data goes through this or safe_url, and every src
    through image_src: a row stored before the policy, or by a path that forgot it, still
    cannot render a script link. Print it with {{!...}}; both parts are escaped here.
    """
    href = urls.safe_url(url)
    text = html.escape(text or href or "(link removed)")
    if href is None:
        return text
    return f'<a href="{html.escape(href)}" rel="nofollow noopener">{text}</a>'


def cacheable(callback):
    """A reader page: the same for every reader until the editor publishes, so cacheable."""

    def page(*args, **kwargs):
        body = callback(*args, **kwargs)
        response.set_header("Cache-Control", PAGE_CACHE)
        if "Content-Type" not in response.headers:
            response.content_type = HTML  # what Caddy sends for the published .html file
        return body

    return page


_fingerprints = {}


def static_url(name):
    """/static/NAME?v=<content hash>: a new release's CSS is a new URL, so caches may keep it for a year."""
    if name not in _fingerprints:
        with open(os.path.join(STATIC, name), "rb") as f:
            _fingerprints[name] = hashlib.sha256(f.read()).hexdigest()[:12]
    return f"/static/{name}?v={_fingerprints[name]}"


def absolute_url(path):
    return cfg()["site"]["base_url"].rstrip("/") + path


# --- An article, as the reader's pages and the desk both show it -------------


def render_article(article):
    """The reader's article page; the desk's preview renders exactly this."""
    return render(
        "article",
        article["title"],
        article["tldr"],
        article=article,
        linked_cards=store.article_linked_cards(db(), article["id"]),
        og_image=urls.safe_url(article["image_url"]) or "",
        og_type="article",
    )


def with_safe_urls(article):
    """A copy of an article whose outside URLs are what the one URL policy keeps (urls.py).

    What the JSON APIs send: a row stored before the policy, or by a path that forgot it,
    must not hand a script link to whatever renders the API's answer. A link that is
    refused is left out; a source, image credit or candidate keeps its text, with "" for
    the URL.
    """
    data = dict(article)
    data["links"] = [dict(link, url=urls.safe_url(link.get("url"))) for link in article["links"]]
    data["links"] = [link for link in data["links"] if link["url"]]
    data["sources"] = [dict(s, url=urls.safe_url(s.get("url")) or "") for s in article["sources"]]
    data["image_url"] = urls.safe_url(article["image_url"]) or ""
    data["image_thumb_url"] = urls.safe_image_src(article["image_thumb_url"]) or ""
    credit = article["image_attribution"]
    data["image_attribution"] = {k: (urls.safe_url(v) or "") if k in CREDIT_URLS else v for k, v in credit.items()}
    data["image_candidates"] = [
        {k: (urls.safe_url(v) or "") if k in CANDIDATE_URLS else v for k, v in c.items()}
        for c in article["image_candidates"]
        if isinstance(c, dict)
    ]
    return data


CANDIDATE_URLS = ("url", "thumbnail", "thumb_url", "page")
CREDIT_URLS = ("link", "author_url", "license_url")  # TASL: the work's, the author's and the licence's pages


# --- JSON --------------------------------------------------------------------


def json_response(data, status=200):
    response.status = status
    response.content_type = "application/json"
    return json.dumps(data, ensure_ascii=False, indent=1)


# --- Errors ------------------------------------------------------------------

ERROR_TITLES = {
    400: "Bad request",
    401: "Sign in needed",
    403: "Forbidden",
    404: "Page not found",
    405: "Method not allowed",
    409: "Not allowed right now",
    413: "Request too large",
    429: "Too many attempts",
    500: "Something broke",
    503: "Unavailable",
}


def error_page(error):
    """Every error is a page (or JSON under /api), never a traceback."""
    code = error.status_code
    if "Cache-Control" not in response.headers:  # a missing page must not be cached as if it existed
        response.set_header("Cache-Control", "no-store")
    message = error.body if isinstance(error.body, str) and code != 500 else ""
    if code == 500:
        message = "The error has been logged. Please try again in a moment."
    if request.path.startswith("/api/"):
        response.content_type = "application/json"
        return json.dumps({"error": ERROR_TITLES.get(code, "Error"), "message": message, "status": code})
    try:
        return render("error", ERROR_TITLES.get(code, "Error"), code=code, message=message)
    except Exception:  # the error page must not itself fail (e.g. database gone)
        return f"{code} {ERROR_TITLES.get(code, 'Error')}"
