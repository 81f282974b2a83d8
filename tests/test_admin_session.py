"""Desk sessions and request safety: signed expiring cookie, CSRF, logout, secret, size limit."""

import os
import pathlib
import re
import stat

import pytest
import requests
import webtest
from helpers import PASSWORD, csrf_token, login, make_article

import app as milesahead
import store

pytestmark = pytest.mark.desk_open  # every test here has the desk open


def session_cookie_header(response):
    cookies = [v for k, v in response.headerlist if k.lower() == "set-cookie" and v.startswith("milesahead_admin=")]
    assert len(cookies) == 1, response.headerlist
    return cookies[0]


def test_session_cookie_is_httponly_lax_and_expires(client, config):
    header = session_cookie_header(login(client))
    assert "httponly" in header.lower()
    assert "samesite=lax" in header.lower()
    assert "secure" not in header.lower()  # plain http on loopback
    assert f"max-age={config['admin']['session_hours'] * 3600}" in header.lower()


def login_over(client, environ):
    page = client.get("/admin/login", extra_environ=environ)
    token = page.forms[0]["csrf_token"].value
    return client.post("/admin/login", {"password": PASSWORD, "csrf_token": token}, extra_environ=environ)


def test_session_cookie_is_secure_over_https(client):
    header = session_cookie_header(login_over(client, {"wsgi.url_scheme": "https", "REMOTE_ADDR": "192.0.2.1"}))
    assert "secure" in header.lower()


def login_cookie_header(client, environ):
    page = client.get("/admin/login", extra_environ=environ)
    return next(v for k, v in page.headerlist if k.lower() == "set-cookie" and v.startswith("milesahead_login="))


def test_forwarded_proto_counts_only_behind_a_trusted_proxy(config, client):
    forwarded = {"HTTP_X_FORWARDED_PROTO": "https", "REMOTE_ADDR": "127.0.0.1"}
    assert "secure" not in login_cookie_header(client, forwarded).lower()
    config["server"]["trust_proxy_headers"] = True
    trusting = webtest.TestApp(milesahead.create_app(config))
    assert "secure" in login_cookie_header(trusting, forwarded).lower()


def test_a_tampered_session_cookie_is_refused(client):
    login(client)
    value = client.cookies["milesahead_admin"]
    issued, nonce, signature = value.split(".")
    forged = f"{int(issued) + 3600}.{nonce}.{signature}"
    client.set_cookie("milesahead_admin", forged)
    assert client.get("/admin").status_int == 302
    client.set_cookie("milesahead_admin", f"{issued}.{nonce}.{'0' * 64}")
    assert client.get("/admin").status_int == 302


def test_an_expired_session_goes_back_to_login(app, client, config):
    login(client)
    assert client.get("/admin").status_int == 200
    desk = app.state.auth
    issued = int(client.cookies["milesahead_admin"].split(".")[0])
    desk.clock = lambda: issued + config["admin"]["session_hours"] * 3600 + 1
    assert "/admin/login" in client.get("/admin", status=302).location
    assert client.get("/api/admin/articles", status=401).json["status"] == 401


def test_expired_session_cannot_post(app, client, conn, config):
    article_id = make_article(conn)
    login(client)
    token = csrf_token(client)
    app.state.auth.clock = lambda: 4_000_000_000
    client.post(f"/admin/articles/{article_id}/approve", {"csrf_token": token}, status=401)
    assert store.get_article(conn, article_id)["status"] == "draft"


def test_logout_ends_the_session_even_if_the_cookie_is_replayed(client):
    login(client)
    stolen = client.cookies["milesahead_admin"]
    response = client.post("/admin/logout", {"csrf_token": csrf_token(client)})
    assert response.location.endswith("/admin/login")
    assert client.get("/admin").status_int == 302
    client.set_cookie("milesahead_admin", stolen)
    assert client.get("/admin").status_int == 302


def test_logout_holds_after_a_restart(client, config):
    login(client)
    stolen = client.cookies["milesahead_admin"]
    client.post("/admin/logout", {"csrf_token": csrf_token(client)})
    restarted = webtest.TestApp(milesahead.create_app(config))  # same database, same secret
    restarted.set_cookie("milesahead_admin", stolen)
    assert restarted.get("/admin").status_int == 302


@pytest.mark.parametrize("token", [None, "", "forged", "0" * 64])
def test_posts_without_the_right_csrf_token_get_403_and_change_nothing(client, conn, token):
    article_id = make_article(conn)
    login(client)
    data = {} if token is None else {"csrf_token": token}
    page = client.post(f"/admin/articles/{article_id}/approve", data, status=403)
    assert "CSRF" in page.text
    client.post(f"/admin/articles/{article_id}/edit", dict(data, title="Hijacked"), status=403)
    client.post("/admin/logout", data, status=403)
    article = store.get_article(conn, article_id)
    assert (article["status"], article["title"]) == ("draft", "Sapphire Reserve bonus climbs to 100,000 points")
    assert client.get("/admin").status_int == 200  # logout was refused too


def test_a_token_from_another_session_is_refused(app, client, conn):
    article_id = make_article(conn)
    other = webtest.TestApp(app)
    login(other)
    foreign = csrf_token(other)
    login(client)
    client.post(f"/admin/articles/{article_id}/approve", {"csrf_token": foreign}, status=403)
    client.post(f"/admin/articles/{article_id}/approve", {"csrf_token": csrf_token(client)}, status=302)


def test_the_login_form_needs_its_csrf_token(client):
    client.get("/admin/login")
    client.post("/admin/login", {"password": PASSWORD}, status=403)
    client.post("/admin/login", {"password": PASSWORD, "csrf_token": "forged"}, status=403)
    assert "milesahead_admin" not in client.cookies


def test_the_secret_is_generated_once_into_the_data_dir_with_mode_0600(config, client):
    path = os.path.join(os.path.dirname(config["database"]["path"]), "session_secret")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    secret = pathlib.Path(path).read_text()
    assert len(secret.strip()) >= 32
    login(client)
    restarted = webtest.TestApp(milesahead.create_app(config))  # a restart keeps sessions valid
    restarted.set_cookie("milesahead_admin", client.cookies["milesahead_admin"])
    assert restarted.get("/admin").status_int == 200
    assert pathlib.Path(path).read_text() == secret


def test_a_configured_secret_is_used_and_no_file_is_written(tmp_path, config):
    config["database"]["path"] = str(tmp_path / "other" / "db.sqlite")
    config["admin"]["session_secret"] = "from-config-" + "x" * 40
    first = webtest.TestApp(milesahead.create_app(config))
    login(first)
    assert not os.path.exists(tmp_path / "other" / "session_secret")
    config["admin"]["session_secret"] = "rotated-" + "y" * 40
    rotated = webtest.TestApp(milesahead.create_app(config))
    rotated.set_cookie("milesahead_admin", first.cookies["milesahead_admin"])
    assert rotated.get("/admin").status_int == 302  # rotating the secret ends every session


def test_oversized_bodies_get_a_413_page(client, conn, config):
    article_id = make_article(conn)
    login(client)
    huge = "x" * (config["server"]["max_body_bytes"] + 1)
    page = client.post(
        f"/admin/articles/{article_id}/edit", {"csrf_token": csrf_token(client), "body_html": huge}, status=413
    )
    assert "Request too large" in page.text
    assert store.get_article(conn, article_id)["body_html"] == "<p>The offer runs until March.</p>"


def test_an_unexpected_error_is_a_page_not_a_traceback(client, conn, monkeypatch):
    import workflow

    article_id = make_article(conn)
    login(client)

    def broken(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(workflow, "transition", broken)
    page = client.post(
        f"/admin/articles/{article_id}/approve", {"csrf_token": csrf_token(client)}, status=500, expect_errors=True
    )
    assert "Traceback" not in page.text and "secret internals" not in page.text
    assert "Something broke" in page.text


def test_desk_pages_are_not_cached_indexed_or_framed(client):
    login(client)
    response = client.get("/admin")
    assert response.headers["Cache-Control"] == "no-store"
    assert "noindex" in response.headers["X-Robots-Tag"]
    assert response.headers["X-Frame-Options"] == "DENY"


def test_the_desk_works_over_a_real_waitress_server(live_server, conn):
    article_id = make_article(conn)
    with requests.Session() as browser:
        page = browser.get(f"{live_server}/admin/login", timeout=10)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        response = browser.post(
            f"{live_server}/admin/login", data={"password": PASSWORD, "csrf_token": token}, timeout=10
        )
        assert response.url == f"{live_server}/admin" and "Queues" in response.text
        token = browser.get(f"{live_server}/api/admin/session", timeout=10).json()["csrf_token"]
        response = browser.post(
            f"{live_server}/admin/articles/{article_id}/approve", data={"csrf_token": token}, timeout=10
        )
        assert "the article is live" in response.text
    assert store.get_article(conn, article_id)["status"] == "approved"
