"""Desk actions at once: public/ always ends as a full publish of the committed database.

Approve and unpublish on one article, a few milliseconds apart, once left the
home page, the lists and the article itself in public/ (about 3 % of trials):
each action worked out the pages it touched outside its own transaction. Here
real threads drive a real waitress with a real session and CSRF token, and after
every round public/ is compared, byte for byte, with a fresh full publish of the
database into another directory.
"""

import concurrent.futures
import os
import random
import re
import time

import pytest
import requests
from helpers import PASSWORD, make_article, seed_sample_cards

import app as milesahead
import publish as publishing

pytestmark = pytest.mark.desk_open  # every test here has the desk open

ROUNDS = 60  # x ARTICLES racing pairs: enough to catch a 3 % race many times over
ARTICLES = 3


def tree(directory):
    """Every file under directory and its bytes."""
    found = {}
    for folder, _dirs, names in os.walk(directory):
        for name in names:
            path = os.path.join(folder, name)
            with open(path, "rb") as f:
                found[os.path.relpath(path, directory)] = f.read()
    return found


def logged_in(base):
    """A requests session logged in to the desk, and its CSRF token."""
    browser = requests.Session()
    page = browser.get(f"{base}/admin/login", timeout=30)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    reply = browser.post(f"{base}/admin/login", data={"password": PASSWORD, "csrf_token": token}, timeout=30)
    assert reply.url == f"{base}/admin"
    return browser, browser.get(f"{base}/api/admin/session", timeout=30).json()["csrf_token"]


@pytest.fixture
def desk_over_http(app, live_server):
    browser, token = logged_in(live_server)
    cookies = browser.cookies.get_dict()

    def post(path, delay=0.0, **form):
        """POST as the editor (a fresh connection, the same session), after `delay` seconds."""
        time.sleep(delay)
        with requests.Session() as session:
            session.cookies.update(cookies)
            reply = session.post(
                f"{live_server}{path}", data={"csrf_token": token, **form}, allow_redirects=False, timeout=60
            )
        assert reply.status_code in (303, 409), reply.text
        return reply.status_code

    yield post
    browser.close()


def test_racing_desk_actions_leave_public_exactly_as_a_full_publish(app, conn, desk_over_http, tmp_path):
    seed_sample_cards(conn)
    ids = [
        make_article(conn, title=f"Sapphire Reserve and Venture X offer {n}", body_html=f"<p>Story {n}.</p>")
        for n in range(ARTICLES)
    ]
    public = milesahead.publisher(app).directory
    milesahead.publisher(app).publish_all()  # as serve does at start
    reference = publishing.Publisher(app, str(tmp_path / "reference"), milesahead.STATIC)
    jitter = random.Random(11)
    post = desk_over_http
    with concurrent.futures.ThreadPoolExecutor(max_workers=3 * ARTICLES) as pool:
        for round_number in range(ROUNDS):
            calls = []
            for article_id in ids:
                calls.append(pool.submit(post, f"/admin/articles/{article_id}/approve"))
                calls.append(pool.submit(post, f"/admin/articles/{article_id}/unpublish", jitter.uniform(0, 0.03)))
                if round_number % 4 == 0:
                    title = f"Sapphire Reserve offer {article_id}, edit {round_number}"
                    calls.append(pool.submit(post, f"/admin/articles/{article_id}/edit", 0.01, title=title))
            for call in calls:
                call.result()
            reference.publish_all()
            published, expected = tree(public), tree(reference.directory)
            differing = sorted(
                name for name in published.keys() | expected.keys() if published.get(name) != expected.get(name)
            )
            assert not differing, f"round {round_number}: public/ differs from a full publish in {differing}"
