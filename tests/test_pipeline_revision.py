"""Editor feedback: a revision_requested article is revised, re-scored and sent back as pending."""

import pytest

import pipeline
import store
import workflow


@pytest.fixture
def sent_back(config, world, conn):
    pipeline.run(config)
    article_id = conn.execute("SELECT id FROM articles WHERE type = 'deal'").fetchone()[0]
    workflow.transition(conn, article_id, "revision_requested", "editor", feedback="Say when the offer ends.")
    return article_id


def test_feedback_is_worked_in_as_a_new_pending_revision(config, world, conn, sent_back):
    before = store.get_article(conn, sent_back)
    pipeline.run(config)
    after = store.get_article(conn, sent_back)
    assert after["status"] == "pending"
    assert "Revised for the editor: Say when the offer ends." in after["body_html"]
    assert after["persona_take"].startswith("Revised take")
    assert after["critic_score"] == 8  # re-scored
    assert after["image_url"] == before["image_url"]  # the image stays
    revisions = store.revisions(conn, sent_back)
    assert len(revisions) == 2 and revisions[-1]["author"] == "pipeline"
    prompt = next(r for r in world.model.requests if b"revise_for_editor" in r["body"])["body"].decode()
    assert "Say when the offer ends." in prompt
    # and the editor can now approve it
    assert workflow.transition(conn, sent_back, "approved", "editor")["status"] == "approved"


def test_a_failed_revision_leaves_the_article_waiting_for_the_next_run(config, world, conn, sent_back):
    world.model.overrides["revise_for_editor"] = "no"
    run_id = pipeline.run(config)
    assert store.get_article(conn, sent_back)["status"] == "revision_requested"
    errors = conn.execute("SELECT errors FROM pipeline_runs WHERE id = ?", (run_id,)).fetchone()[0]
    assert f"revision of article {sent_back}" in errors
    del world.model.overrides["revise_for_editor"]
    pipeline.run(config)
    assert store.get_article(conn, sent_back)["status"] == "pending"


def test_an_article_the_editor_moved_meanwhile_is_left_alone(config, world, conn, sent_back):
    def editor_acts_first(body):
        # the editor resubmits by hand while the model is still writing
        other = store.connect(config["database"]["path"])
        workflow.transition(other, sent_back, "pending", "editor")
        other.close()
        from standins.openai import newsroom

        return newsroom("revise_for_editor", body["messages"])

    world.model.overrides["revise_for_editor"] = editor_acts_first
    run_id = pipeline.run(config)
    article = store.get_article(conn, sent_back)
    assert article["status"] == "pending" and "Revised for the editor" not in article["body_html"]
    errors = conn.execute("SELECT errors FROM pipeline_runs WHERE id = ?", (run_id,)).fetchone()[0]
    assert "cannot move to pending" in errors
