"""The desk's JSON API: same actions and rules, session + CSRF header or a bearer token."""

import json

import pytest
from helpers import csrf_token, desk_config, finished_runs, login, make_article, wait_for

import store

TOKEN = "t0ken-" + "a" * 40


@pytest.fixture
def config(config, password_hash):
    """Here the desk is open and scripts have a token: this module's config, written where it is used."""
    config["admin"]["api_token"] = TOKEN
    return desk_config(config, password_hash)


BEARER = {"Authorization": f"Bearer {TOKEN}"}


def test_without_credentials_everything_is_401_json(client, conn):
    article_id = make_article(conn)
    for path in ("/api/admin/articles", f"/api/admin/articles/{article_id}", "/api/admin/runs"):
        assert client.get(path, status=401).json["status"] == 401
    client.post_json(f"/api/admin/articles/{article_id}/approve", {}, status=401)
    assert store.get_article(conn, article_id)["status"] == "draft"


@pytest.mark.parametrize("header", ["Bearer wrong", f"Basic {TOKEN}", "Bearer ", f"Bearer {TOKEN}x"])
def test_a_wrong_token_is_401(client, header):
    client.get("/api/admin/articles", headers={"Authorization": header}, status=401)


def test_no_configured_token_means_no_token_login(config, client):
    config["admin"]["api_token"] = ""
    client.get("/api/admin/articles", headers={"Authorization": "Bearer "}, status=401)


def test_wrong_tokens_are_throttled_too(client):
    for _ in range(5):
        client.get("/api/admin/articles", headers={"Authorization": "Bearer guess"}, status=401)
    response = client.get("/api/admin/articles", headers=BEARER, status=429)
    assert response.headers["Retry-After"]


def test_token_scripts_the_whole_desk(client, conn):
    article_id = make_article(conn)
    listing = client.get("/api/admin/articles?status=draft", headers=BEARER).json
    assert listing["counts"]["draft"] == 1
    assert [a["id"] for a in listing["articles"]] == [article_id]
    detail = client.get(f"/api/admin/articles/{article_id}", headers=BEARER).json
    assert detail["allowed_transitions"] == ["approved", "rejected", "revision_requested"]
    assert detail["revisions"][0]["number"] == 1
    edited = client.post_json(
        f"/api/admin/articles/{article_id}/edit", {"tldr": "Edited by script.", "note": "api"}, headers=BEARER
    ).json
    assert edited["tldr"] == "Edited by script." and edited["changed"] == ["tldr"]
    diff = client.get(f"/api/admin/articles/{article_id}/diff", headers=BEARER).json
    assert (diff["from"], diff["to"]) == (1, 2)
    assert [c["field"] for c in diff["changes"]] == ["tldr"]
    moved = client.post_json(
        f"/api/admin/articles/{article_id}/transition",
        {"to": "revision_requested", "feedback": "More detail."},
        headers=BEARER,
    ).json
    assert moved["status"] == "revision_requested"
    event = store.events(conn, article_id)[-1]
    assert (event["actor"], event["feedback"]) == ("editor (api token)", "More detail.")


def test_refused_moves_are_409_with_the_current_state(client, conn):
    article_id = make_article(conn, status="rejected")
    response = client.post_json(f"/api/admin/articles/{article_id}/approve", {}, headers=BEARER, status=409).json
    assert response["current"] == "rejected" and response["target"] == "approved"
    assert "is rejected" in response["message"]
    response = client.post_json(
        f"/api/admin/articles/{article_id}/transition", {"to": "nonsense"}, headers=BEARER, status=400
    ).json
    assert "unknown status" in response["message"]
    client.post_json("/api/admin/articles/999/approve", {}, headers=BEARER, status=404)


def test_session_callers_need_the_csrf_header_on_posts(client, conn):
    article_id = make_article(conn)
    login(client)
    client.post_json(f"/api/admin/articles/{article_id}/approve", {}, status=403)
    client.post_json(f"/api/admin/articles/{article_id}/approve", {}, headers={"X-CSRF-Token": "forged"}, status=403)
    assert store.get_article(conn, article_id)["status"] == "draft"
    token = csrf_token(client)
    response = client.post_json(f"/api/admin/articles/{article_id}/approve", {}, headers={"X-CSRF-Token": token})
    assert response.json["status"] == "approved"
    assert store.events(conn, article_id)[-1]["actor"] == "editor"


def test_invalid_json_is_a_400_not_a_traceback(client, conn):
    article_id = make_article(conn)
    response = client.post(
        f"/api/admin/articles/{article_id}/edit",
        "{not json",
        headers=dict(BEARER, **{"Content-Type": "application/json"}),
        status=400,
    )
    assert response.json["status"] == 400


def test_runs_are_listed_from_the_table(client, conn):
    conn.execute(
        "INSERT INTO pipeline_runs (trigger, status, started_at, finished_at, counts, errors)"
        " VALUES ('schedule', 'partial', '2026-11-27T10:00:00+00:00', '2026-11-27T10:02:00+00:00', ?, ?)",
        (json.dumps({"articles": 2}), json.dumps(["feed x timed out"])),
    )
    runs = client.get("/api/admin/runs", headers=BEARER).json
    assert runs["runs"][0]["counts"] == {"articles": 2}
    assert runs["runs"][0]["errors"] == ["feed x timed out"]


def wait_for_finished_run(conn):
    wait_for(lambda: finished_runs(conn) >= 1, timeout=30, what="a finished pipeline run")
    return tuple(conn.execute("SELECT trigger, status FROM pipeline_runs WHERE status != 'running'").fetchone())


def test_trigger_starts_a_real_run_and_refuses_a_second_while_it_goes(client, world, conn):
    world.model.hold_from = 1  # the model stand-in holds its replies until released
    response = client.post_json("/api/admin/runs", {}, headers=BEARER, status=202).json
    assert response["started"] is True and "started" in response["message"]
    response = client.post_json("/api/admin/runs", {}, headers=BEARER, status=409).json
    assert response["started"] is False and "already in progress" in response["message"]
    world.model.released.set()
    assert wait_for_finished_run(conn) == ("admin", "ok")
    assert client.get("/api/admin/runs", headers=BEARER).json["runs"][0]["trigger"] == "admin"


def test_the_real_pipeline_without_an_llm_key_is_not_configured(config, client):
    config["llm"]["api_key"] = ""
    runs = client.get("/api/admin/runs", headers=BEARER).json
    assert runs["configured"] is False and runs["reason"]
    client.post_json("/api/admin/runs", {}, headers=BEARER, status=409)
    assert client.get("/api/admin/runs", headers=BEARER).json["runs"] == []
