"""Edits by hand: a new revision each time, history kept, diffs between revisions."""

import re

import pytest
from helpers import make_article, post_action

import store
import workflow

pytestmark = pytest.mark.desk_open  # every test here has the desk open


def edit_form(editor, article_id):
    page = editor.get(f"/admin/articles/{article_id}")
    return next(f for f in page.forms.values() if f.action.endswith("/edit") and "title" in f.fields)


def test_an_edit_makes_a_new_revision_and_keeps_the_old_one(editor, conn):
    article_id = make_article(conn, title="Bonus at 80,000 points", body_html="<p>Old body.</p>")
    form = edit_form(editor, article_id)
    form["title"] = "Bonus at 100,000 points \u2014 for now"
    form["body_html"] = "<p>New body.</p><script>alert(1)</script>"
    form["key_details"] = "Bonus: 100,000 points\nMinimum spend: $6,000"
    form["note"] = "fixed the number"
    page = form.submit(status=302).follow()
    assert "Saved as a new revision" in page.text
    article = store.get_article(conn, article_id)
    assert article["title"] == "Bonus at 100,000 points \u2014 for now"  # UTF-8 survives the form
    assert article["body_html"] == "<p>New body.</p>"
    assert article["key_details"] == [["Bonus", "100,000 points"], ["Minimum spend", "$6,000"]]
    history = store.revisions(conn, article_id)
    assert [(r["number"], r["author"], r["title"]) for r in history] == [
        (1, "pipeline", "Bonus at 80,000 points"),
        (2, "editor", "Bonus at 100,000 points \u2014 for now"),
    ]
    assert history[1]["note"] == "fixed the number"
    assert history[0]["body_html"] == "<p>Old body.</p>"


def test_the_review_page_shows_history_and_a_word_diff(editor, conn):
    article_id = make_article(conn, title="Bonus at 80,000 points")
    post_action(editor, article_id, "edit", title="Bonus at 100,000 points")
    post_action(editor, article_id, "edit", tldr="Shorter.")
    page = editor.get(f"/admin/articles/{article_id}")
    assert "Changes from revision 2 to 3" in page.text
    assert "<ins>Shorter.</ins>" in page.text
    page = editor.get(f"/admin/articles/{article_id}?from=1&to=2")
    diff = page.text[page.text.index('id="diff"') :]
    assert "<del> 80,000</del>" in diff and "<ins> 100,000</ins>" in diff
    assert "TL;DR" not in diff  # only fields that changed
    page = editor.get(f"/admin/articles/{article_id}?from=1&to=3")
    assert re.search(r"<h4>Title</h4>", page.text) and re.search(r"<h4>TL;DR</h4>", page.text)
    editor.get(f"/admin/articles/{article_id}?from=1&to=9", status=404)


def test_diff_text_is_escaped(editor, conn):
    article_id = make_article(conn, title="Plain")
    post_action(editor, article_id, "edit", title="<img src=x onerror=alert(1)>")
    page = editor.get(f"/admin/articles/{article_id}")
    assert "<img src=x" not in page.text
    assert "&lt;img" in page.text


def test_an_edit_that_changes_nothing_makes_no_revision(editor, conn):
    article_id = make_article(conn)
    page = edit_form(editor, article_id).submit(status=302).follow()
    assert "Nothing changed" in page.text
    assert len(store.revisions(conn, article_id)) == 1


def test_setting_the_type_by_hand(editor, conn):
    article_id = make_article(conn, type="summary")
    page = editor.get(f"/admin/articles/{article_id}")
    form = next(f for f in page.forms.values() if f.action.endswith("/edit") and "title" not in f.fields)
    form["type"] = "roundup"
    form.submit(status=302)
    assert store.get_article(conn, article_id)["type"] == "roundup"
    assert store.revisions(conn, article_id)[-1]["note"] == "type set by hand"
    post_action(editor, article_id, "edit", status=400, type="opinion")
    assert store.get_article(conn, article_id)["type"] == "roundup"


def test_bad_edits_are_refused_with_a_message(editor, conn):
    article_id = make_article(conn)
    assert "title" in post_action(editor, article_id, "edit", status=400, title=" ").text
    assert "Label: value" in post_action(editor, article_id, "edit", status=400, key_details="no colon").text
    assert len(store.revisions(conn, article_id)) == 1


def test_a_pipeline_revision_after_feedback_shows_in_the_history(editor, conn):
    article_id = make_article(conn)
    post_action(editor, article_id, "request-revision", feedback="Add the minimum spend.")
    workflow.revise(
        conn,
        article_id,
        "pipeline",
        note="revised from editor feedback",
        to_status="pending",
        tldr="Spend $6,000 in 3 months.",
    )
    page = editor.get(f"/admin/articles/{article_id}")
    assert "Pending review" in page.text
    assert "revised from editor feedback" in page.text
    assert "<ins>Spend $6,000 in 3 months.</ins>" in page.text
