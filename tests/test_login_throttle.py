"""The login throttle cannot be outrun: not by flooding it from many addresses, not by
spreading guesses over them, not with bad API tokens.

Client addresses are REMOTE_ADDR, as waitress sets it (from X-Forwarded-For only when
the request comes from the trusted proxy); WebTest sets it directly.
"""

import pytest
from helpers import PASSWORD, login

pytestmark = pytest.mark.desk_open  # every test here has the desk open

TOKEN = "s" * 40
LOCKED = {"REMOTE_ADDR": "192.0.2.10"}


class Clock:
    def __init__(self, desk):
        self.now = 1_800_000_000.0
        desk.clock = lambda: self.now


@pytest.fixture
def desk(app):
    return app.state.auth


@pytest.fixture
def clock(desk):
    return Clock(desk)


def address(n):
    return {"REMOTE_ADDR": f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"}


def bad_token(client, environ, status=401):
    headers = {"Authorization": "Bearer wrong"}
    return client.get("/api/admin/articles", headers=headers, extra_environ=environ, status=status)


def lock_out(client):
    for _ in range(5):
        login(client, "wrong", status=401, environ=LOCKED)
    return login(client, PASSWORD, status=429, environ=LOCKED)


def test_a_lock_lasts_its_time_while_many_addresses_send_bad_tokens(config, desk, client, clock):
    config["admin"]["api_token"] = TOKEN
    desk.throttle.max_clients = 50  # a small table: filling it takes 100 requests, not 10,000
    lock_out(client)
    for n in range(2 * desk.throttle.max_clients):
        bad_token(client, address(n), status=(401, 429))
    clock.now += 1
    login(client, PASSWORD, status=429, environ=LOCKED)  # still locked: bcrypt was not reached
    clock.now += 1
    login(client, environ=LOCKED)  # its 2 s are over


def test_when_the_table_is_full_newcomers_share_one_budget(config, desk, client, clock):
    config["admin"]["api_token"] = TOKEN
    desk.throttle.max_clients = 20
    for n in range(20):  # the table fills with clients who each failed once
        bad_token(client, address(n))
    for n in range(100, 105):  # five newcomers, five failures in the shared entry
        bad_token(client, address(n))
    bad_token(client, address(200), status=429)  # a sixth newcomer waits with them
    bad_token(client, address(3))  # a client in the table keeps its own budget
    login(client, environ=address(4))


def test_bad_tokens_cost_the_client_its_own_budget_and_no_one_elses(config, client, clock):
    config["admin"]["api_token"] = TOKEN
    other = address(1)
    for _ in range(5):
        bad_token(client, other)
    reply = bad_token(client, other, status=429)
    assert reply.headers["Retry-After"] == "2"
    login(client, PASSWORD, status=429, environ=other)  # the same client, the same budget
    login(client, environ=LOCKED)
    authorized = {"Authorization": f"Bearer {TOKEN}"}
    assert client.get("/api/admin/articles", headers=authorized, extra_environ=address(2)).status_int == 200


def test_without_an_api_token_a_bearer_header_is_refused_and_costs_nothing(client, clock):
    for _ in range(20):
        reply = bad_token(client, LOCKED)
        assert "admin.api_token is not set" in reply.json["message"]
    login(client, environ=LOCKED)  # never throttled: there was no secret to guess


def test_password_checks_for_the_account_are_capped_per_minute_whatever_the_address(config, app, client, clock):
    limit = config["admin"]["max_password_checks_per_minute"]
    assert limit == 30
    for n in range(limit):
        clock.now += 1
        login(client, "wrong", status=401, environ=address(n))
    refused = login(client, PASSWORD, status=429, environ=address(999))  # even the right password
    assert "Too many login attempts on this site" in refused.text
    assert refused.headers["Retry-After"] == "31"  # the oldest check leaves the minute then
    clock.now += 31
    login(client, environ=address(999))
