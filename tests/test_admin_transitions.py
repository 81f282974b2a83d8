"""Desk actions over HTTP: every allowed move from its button, every other refused with 409."""

import pytest
from helpers import make_article, post_action

import desk
import store
import workflow

pytestmark = pytest.mark.desk_open  # every test here has the desk open

ACTION_FOR = {target: action for action, target in desk.ACTION_TARGETS.items()}
ALLOWED = [(a, b) for a, targets in workflow.TRANSITIONS.items() for b in targets]
REFUSED = [(a, b) for a in store.ARTICLE_STATUSES for b in ACTION_FOR if b not in workflow.TRANSITIONS[a]]


@pytest.mark.parametrize(("start", "target"), ALLOWED)
def test_allowed_moves_happen_and_show_on_the_review_page(editor, conn, start, target):
    article_id = make_article(conn, status=start)
    page = editor.get(f"/admin/articles/{article_id}")
    form = next(f for f in page.forms.values() if f.action.endswith(f"/{ACTION_FOR[target]}"))
    if "feedback" in form.fields:
        form["feedback"] = "Add the minimum spend."
    result = form.submit(status=302)
    assert result.location.endswith(f"/admin/articles/{article_id}")
    assert store.get_article(conn, article_id)["status"] == target
    page = result.follow()
    assert desk.DONE[target] in page.text
    event = store.events(conn, article_id)[-1]
    assert (event["actor"], event["from_status"], event["to_status"]) == ("editor", start, target)
    assert f"{start} → {target}" in page.text


@pytest.mark.parametrize(("start", "target"), REFUSED)
def test_refused_moves_get_409_naming_the_current_state(editor, conn, start, target):
    article_id = make_article(conn, status=start)
    page = post_action(editor, article_id, ACTION_FOR[target], status=409, feedback="Some feedback.")
    assert f"The article is {start}" in page.text
    assert store.get_article(conn, article_id)["status"] == start
    assert store.events(conn, article_id) == []


def test_the_review_page_offers_only_allowed_moves(editor, conn):
    for status in store.ARTICLE_STATUSES:
        article_id = make_article(conn, status=status)
        page = editor.get(f"/admin/articles/{article_id}")
        offered = {f.action.rsplit("/", 1)[1] for f in page.forms.values() if "/articles/" in f.action}
        offered.discard("edit")
        assert offered == {ACTION_FOR[t] for t in workflow.TRANSITIONS[status]}, status


def test_requesting_a_revision_needs_feedback_and_records_it(editor, conn):
    article_id = make_article(conn)
    page = post_action(editor, article_id, "request-revision", status=400, feedback="  ")
    assert "feedback" in page.text
    assert store.get_article(conn, article_id)["status"] == "draft"
    post_action(editor, article_id, "request-revision", feedback="Name both sources.")
    article = store.get_article(conn, article_id)
    assert (article["status"], article["feedback"]) == ("revision_requested", "Name both sources.")
    page = editor.get(f"/admin/articles/{article_id}")
    assert "Name both sources." in page.text
    assert store.events(conn, article_id)[-1]["feedback"] == "Name both sources."


def test_reject_and_unpublish_keep_their_reason(editor, conn):
    article_id = make_article(conn)
    post_action(editor, article_id, "reject", feedback="Duplicate story.")
    assert store.events(conn, article_id)[-1]["feedback"] == "Duplicate story."


def test_approving_publishes_and_unpublishing_hides(editor, client, conn):
    article_id = make_article(conn)
    slug = store.get_article(conn, article_id)["slug"]
    client.get(f"/articles/{slug}", status=404)
    post_action(editor, article_id, "approve")
    assert store.get_article(conn, article_id)["published_at"]
    assert "Sapphire Reserve bonus" in client.get(f"/articles/{slug}").text
    post_action(editor, article_id, "unpublish")
    client.get(f"/articles/{slug}", status=404)


def test_unknown_articles_and_actions_are_404(editor):
    editor.get("/admin/articles/999", status=404)
    post_action(editor, 999, "approve", status=404)
    post_action(editor, 1, "publish", status=404)
