"""No input reaches a 500: stray bytes, huge ids, mistyped JSON and oversized bodies get 4xx.

A 500 logs a traceback, so a request that can cause one is a lever to flood the log;
each of these is answered with a 4xx that says what was wrong, before any login check
where the request itself is unreadable.
"""

import io
import json

import pytest
import requests
from helpers import csrf_token, login, make_article

import app as milesahead
import store

pytestmark = pytest.mark.desk_open  # every test here has the desk open

BAD_FORMS = [
    (b"password=%ff&csrf_token=x", "application/x-www-form-urlencoded"),
    (b"csrf_token=%ff", "application/x-www-form-urlencoded"),
    (b"%ff=1", "application/x-www-form-urlencoded"),
    ("password=x&csrf_token=y".encode("utf-16"), "application/x-www-form-urlencoded; charset=utf-16"),
    (b"feedback=%C3%28", "text/plain"),  # bottle reads any non-JSON body as a form
]
HUGE = 99999999999999999999  # past SQLite's 64-bit integers


def post_routes(app, article_id):
    """Every POST address the app answers, with a real article in it."""
    paths = []
    for route in app.routes:
        if route.method == "POST":
            path = route.rule.replace("<article_id:int>", str(article_id))
            paths.append(path.split("<action:")[0] + "approve" if "<action:" in path else path)
    return paths


def send(client, path, body, content_type, headers=(), **kwargs):
    """POST raw bytes; returns the reply and what the app wrote to wsgi.errors (tracebacks)."""
    errors = io.StringIO()
    headers = {"Content-Type": content_type, **dict(headers)}
    reply = client.post(path, body, headers=headers, extra_environ={"wsgi.errors": errors}, **kwargs)
    return reply, errors.getvalue()


@pytest.mark.parametrize("logged_in", [False, True], ids=["logged-out", "logged-in"])
def test_a_form_that_is_not_utf8_is_a_400_on_every_post_route(app, client, conn, logged_in):
    article_id = make_article(conn)
    if logged_in:
        login(client)
    paths = post_routes(app, article_id)
    assert "/admin/login" in paths and f"/api/admin/articles/{article_id}/edit" in paths
    for path in paths:
        for body, content_type in BAD_FORMS:
            reply, logged = send(client, path, body, content_type, status=400)
            assert logged == "", f"{path} logged a traceback"
            if path.startswith("/api/"):
                assert reply.json["status"] == 400
            else:
                assert "Bad request" in reply.text
    assert store.get_article(conn, article_id)["status"] == "draft"


def test_a_query_that_is_not_utf8_is_a_400(client):
    assert client.get("/admin/login?next=%ff", status=400)
    assert client.get("/api/articles?type=%ff", status=400).json["status"] == 400


def test_ids_past_64_bits_are_not_found(client, conn):
    login(client)
    token = csrf_token(client)
    for path in (f"/admin/articles/{HUGE}", f"/admin/articles/{HUGE}/preview"):
        assert client.get(path, status=404)
    for path in (f"/api/admin/articles/{HUGE}", f"/api/admin/articles/{HUGE}/diff"):
        assert client.get(path, status=404).json["message"] == f"No article with id {HUGE}."
    client.post(f"/admin/articles/{HUGE}/approve", {"csrf_token": token}, status=404)
    client.post(f"/admin/articles/{HUGE}/edit", {"csrf_token": token, "title": "x"}, status=404)
    client.post_json(f"/api/admin/articles/{HUGE}/unpublish", {}, headers={"X-CSRF-Token": token}, status=404)


@pytest.mark.parametrize(
    "path, body, field",
    [
        ("edit", {"title": 5}, "title"),
        ("edit", {"tldr": ["x"]}, "tldr"),
        ("edit", {"body_html": {}}, "body_html"),
        ("edit", {"type": True}, "type"),
        ("edit", {"note": 1, "title": "New"}, "note"),
        ("edit", {"key_details": 5}, "key_details"),
        ("edit", {"key_details": [["Bonus", {"points": 1}]]}, "key_details"),
        ("request-revision", {"feedback": ["x"]}, "feedback"),
        ("transition", {"to": 5}, "to"),
        ("transition", {"status": ["approved"]}, "status"),
    ],
)
def test_mistyped_json_fields_are_a_400_naming_the_field(client, conn, path, body, field):
    article_id = make_article(conn)
    before = store.get_article(conn, article_id)
    login(client)
    reply = client.post_json(
        f"/api/admin/articles/{article_id}/{path}", body, headers={"X-CSRF-Token": csrf_token(client)}, status=400
    )
    assert reply.json["message"].startswith(f"{field} must be")
    assert store.get_article(conn, article_id) == before


def test_json_nested_too_deeply_is_a_400(client, conn):
    article_id = make_article(conn)
    login(client)
    deep = '{"feedback": ' + "[" * 100_000 + "]" * 100_000 + "}"
    reply, logged = send(
        client,
        f"/api/admin/articles/{article_id}/approve",
        deep.encode(),
        "application/json",
        headers={"X-CSRF-Token": csrf_token(client)},
        status=400,
    )
    assert "nested too deeply" in reply.json["message"] and logged == ""


# --- Over a real waitress ------------------------------------------------------------------


@pytest.fixture
def small_limit(config):
    config["server"]["max_body_bytes"] = 4000
    config["admin"]["api_token"] = "t" * 40
    return 4000


def test_a_body_of_exactly_the_limit_is_read_and_one_byte_more_is_the_apps_413(small_limit, live_server):
    form = "csrf_token=wrong&password="
    exactly = form + "x" * (small_limit - len(form))
    reply = requests.post(f"{live_server}/admin/login", data=exactly, timeout=30)
    assert reply.status_code == 403  # read, and refused for its (wrong) CSRF token
    reply = requests.post(f"{live_server}/admin/login", data=exactly + "x", timeout=30)
    assert reply.status_code == 413
    assert reply.headers["Content-Type"].startswith("text/html") and "Request too large" in reply.text
    assert "4,000 bytes" in reply.text


def test_an_oversized_api_body_is_a_json_413_even_chunked(small_limit, live_server):
    url = f"{live_server}/api/admin/articles/1/approve"
    headers = {"Authorization": "Bearer " + "t" * 40, "Content-Type": "application/json"}
    body = json.dumps({"feedback": "x" * 10_000}).encode()
    for data in (body, iter([body[:5000], body[5000:]])):  # with Content-Length, then chunked
        reply = requests.post(url, data=data, headers=headers, timeout=30)
        assert reply.status_code == 413
        assert reply.json() == {
            "error": "Request too large",
            "message": "Request bodies are limited to 4,000 bytes.",
            "status": 413,
        }
    assert len(body) > small_limit + 1 and milesahead.WAITRESS_BODY_SLACK > len(body)


def test_a_path_that_is_not_utf8_is_not_found(live_server):
    for path in ("/articles/%ff", "/cards/%ff%fe", "/admin/articles/%ff", "/api/articles/%C3%28"):
        assert requests.get(live_server + path, timeout=30).status_code == 404
