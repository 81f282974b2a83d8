"""Desk login: bcrypt check, closed without a hash, per-client throttling, logged and counted."""

import logging
import os
import subprocess
import sys

import bcrypt
import pytest
from helpers import CLIENT, PASSWORD, login

import metrics

pytestmark = pytest.mark.desk_open  # every test here has the desk open

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Clock:
    def __init__(self, desk):
        self.now = 1_800_000_000.0
        desk.clock = lambda: self.now


@pytest.fixture
def clock(app):
    return Clock(app.state.auth)


def failures(reason):
    return metrics.REGISTRY.get_sample_value("milesahead_admin_login_failures_total", {"reason": reason}) or 0


def test_right_password_opens_the_desk(client):
    response = login(client)
    assert response.location.endswith("/admin")
    assert "Queues" in client.get("/admin").text


def test_wrong_password_is_refused_counted_and_logged(client, caplog):
    before = failures("wrong_password")
    with caplog.at_level(logging.WARNING, logger="milesahead.admin"):
        page = login(client, "wrong", status=401)
    assert "Wrong password" in page.text
    assert failures("wrong_password") == before + 1
    assert "192.0.2.10" in caplog.text and "wrong password" in caplog.text
    assert client.get("/admin").status_int == 302  # still not logged in


def test_desk_pages_need_a_login(client):
    response = client.get("/admin/articles/1")
    assert response.status_int == 302
    assert "/admin/login?next=/admin/articles/1" in response.location


def test_login_returns_only_to_desk_pages(client):
    page = client.get("/admin/login?next=https://evil.example/", extra_environ=CLIENT)
    page.forms[0]["password"] = PASSWORD
    assert page.forms[0].submit(extra_environ=CLIENT).location.endswith("/admin")
    client.reset()
    page = client.get("/admin/login?next=/admin/runs", extra_environ=CLIENT)
    page.forms[0]["password"] = PASSWORD
    assert page.forms[0].submit(extra_environ=CLIENT).location.endswith("/admin/runs")


@pytest.mark.parametrize("bad", ["", PASSWORD + " ", PASSWORD.upper(), "x" * 73])
def test_near_misses_empty_and_overlong_passwords_fail(client, bad):
    login(client, bad, status=401)


def test_throttle_after_max_failures_with_a_growing_delay(app, client, clock):
    for _ in range(4):
        login(client, "wrong", status=401)
    page = login(client, "wrong", status=401)  # the 5th failure starts the delay
    assert "wait 2 seconds" in page.text
    before = failures("throttled")
    refused = login(client, PASSWORD, status=429)  # even the right password waits
    assert refused.headers["Retry-After"] == "2"
    assert "Too many failed attempts" in refused.text
    assert failures("throttled") == before + 1
    clock.now += 2
    assert "wait 4 seconds" in login(client, "wrong", status=401).text  # doubled
    clock.now += 3
    login(client, PASSWORD, status=429)
    clock.now += 1
    login(client)  # the wait is over and a success clears the record
    client.reset()
    login(client, "wrong", status=401)
    assert "wait" not in login(client, "wrong", status=401).text


def test_throttle_is_per_client_and_ignores_forwarded_for(client, clock):
    for _ in range(5):
        login(client, "wrong", status=401)
    spoofed = dict(CLIENT, HTTP_X_FORWARDED_FOR="198.51.100.7")
    login(client, PASSWORD, status=429, environ=spoofed)
    login(client, PASSWORD, environ={"REMOTE_ADDR": "192.0.2.99"})


def test_no_hash_closes_the_desk_and_never_accepts_a_default(config, client):
    config["admin"]["password_hash"] = ""
    for path in ("/admin", "/admin/login", "/admin/runs"):
        page = client.get(path, status=503)
        assert "hash-password" in page.text and "closed" in page.text
    for password in ("", "admin", "password", PASSWORD):
        page = client.post("/admin/login", {"password": password}, status=503)
        assert "set-cookie" not in {k.lower() for k in page.headers}


def test_a_malformed_hash_also_closes_the_desk(config, client):
    config["admin"]["password_hash"] = "plaintext-password"
    assert "not a bcrypt hash" in client.get("/admin/login", status=503).text


def run_cli(*args, stdin=""):
    return subprocess.run(
        [sys.executable, os.path.join(ROOT, "app.py"), *args], input=stdin, capture_output=True, text=True, timeout=60
    )


def test_hash_password_reads_stdin_and_prints_a_usable_hash():
    result = run_cli("hash-password", stdin="s3cret phrase\n")
    assert result.returncode == 0, result.stderr
    hashed = result.stdout.strip()
    assert "s3cret" not in result.stdout
    assert bcrypt.checkpw(b"s3cret phrase", hashed.encode())


def test_hash_password_refuses_passwords_over_72_bytes():
    result = run_cli("hash-password", stdin="\u00e9" * 37 + "\n")  # 74 bytes
    assert result.returncode != 0
    assert "72 bytes" in result.stderr
    assert "$2b$" not in result.stdout
