"""workflow.py: the state machine, events, revisions and card links, on a real SQLite file."""

import itertools
import random

import pytest
from helpers import make_article, seed_sample_cards

import store
import workflow

ALLOWED = [(a, b) for a, targets in workflow.TRANSITIONS.items() for b in targets]
REFUSED = [
    (a, b)
    for a, b in itertools.product(store.ARTICLE_STATUSES, store.ARTICLE_STATUSES)
    if b not in workflow.TRANSITIONS[a]
]


def test_the_state_machine_is_the_documented_one():
    assert set(ALLOWED) == {
        ("draft", "approved"),
        ("draft", "rejected"),
        ("draft", "revision_requested"),
        ("pending", "approved"),
        ("pending", "rejected"),
        ("pending", "revision_requested"),
        ("revision_requested", "pending"),
        ("approved", "unpublished"),
        ("unpublished", "approved"),
    }


@pytest.mark.parametrize(("start", "target"), ALLOWED)
def test_every_allowed_move_happens_and_is_recorded(conn, start, target):
    article_id = make_article(conn, status=start)
    article = workflow.transition(conn, article_id, target, "tester", feedback="Needs numbers.")
    assert article["status"] == target
    event = store.events(conn, article_id)[-1]
    assert (event["actor"], event["from_status"], event["to_status"]) == ("tester", start, target)
    assert event["action"] == workflow.EVENT_VERBS[target]
    assert event["feedback"] == "Needs numbers."


@pytest.mark.parametrize(("start", "target"), REFUSED)
def test_every_other_move_is_refused_naming_the_current_state(conn, start, target):
    article_id = make_article(conn, status=start)
    with pytest.raises(workflow.TransitionRefused) as refused:
        workflow.transition(conn, article_id, target, "tester", feedback="x")
    assert refused.value.current == start
    assert refused.value.target == target
    assert f"is {start}" in str(refused.value)
    assert store.get_article(conn, article_id)["status"] == start
    assert store.events(conn, article_id) == []


def test_unknown_status_and_missing_article(conn):
    article_id = make_article(conn)
    with pytest.raises(ValueError, match="unknown status"):
        workflow.transition(conn, article_id, "published", "tester")
    with pytest.raises(workflow.ArticleNotFound):
        workflow.transition(conn, 9999, "approved", "tester")


def test_a_revision_request_needs_feedback_and_stores_it(conn):
    article_id = make_article(conn)
    with pytest.raises(ValueError, match="feedback"):
        workflow.transition(conn, article_id, "revision_requested", "editor", feedback="   ")
    assert store.get_article(conn, article_id)["status"] == "draft"
    article = workflow.transition(conn, article_id, "revision_requested", "editor", feedback="Cite the issuer.")
    assert article["feedback"] == "Cite the issuer."


def test_approve_sets_published_at_once_and_reapproval_keeps_it(conn):
    article_id = make_article(conn)
    assert store.get_article(conn, article_id)["published_at"] is None
    first = workflow.transition(conn, article_id, "approved", "editor")["published_at"]
    assert first
    conn.execute("UPDATE articles SET published_at = '2020-01-01T00:00:00+00:00' WHERE id = ?", (article_id,))
    workflow.transition(conn, article_id, "unpublished", "editor")
    again = workflow.transition(conn, article_id, "approved", "editor")
    assert again["published_at"] == "2020-01-01T00:00:00+00:00"


def test_transition_joins_a_transaction_the_caller_already_holds(conn):
    article_id = make_article(conn)
    with pytest.raises(RuntimeError):
        with store.transaction(conn):
            workflow.transition(conn, article_id, "approved", "pipeline")
            assert store.get_article(conn, article_id)["status"] == "approved"
            raise RuntimeError("caller fails later")
    assert store.get_article(conn, article_id)["status"] == "draft"  # rolled back with the caller


def test_revise_snapshots_a_new_revision_and_never_rewrites_history(conn):
    article_id = make_article(conn, title="First title", body_html="<p>First body.</p>")
    article = workflow.revise(
        conn,
        article_id,
        "editor",
        note="tightened",
        title="Second title",
        body_html='<p onclick="x()">Second <script>alert(1)</script>body.</p>',
    )
    assert article["title"] == "Second title"
    assert "script" not in article["body_html"] and "onclick" not in article["body_html"]
    revisions = store.revisions(conn, article_id)
    assert [(r["number"], r["title"], r["author"]) for r in revisions] == [
        (1, "First title", "pipeline"),
        (2, "Second title", "editor"),
    ]
    assert revisions[0]["body_html"] == "<p>First body.</p>"
    assert revisions[1]["note"] == "tightened"
    assert store.events(conn, article_id)[-1]["action"] == "edit"


def test_revise_as_the_pipeline_does_moves_to_pending(conn):
    article_id = make_article(conn, status="revision_requested")
    article = workflow.revise(
        conn,
        article_id,
        "pipeline",
        note="revised from editor feedback",
        to_status="pending",
        tldr="Better summary.",
        critic_score=8.5,
        critic_issues=[],
        key_details=[["Bonus", "100k"]],
    )
    assert (article["status"], article["tldr"], article["critic_score"]) == ("pending", "Better summary.", 8.5)
    assert [e["action"] for e in store.events(conn, article_id)] == ["edit", "submit"]
    assert store.revisions(conn, article_id)[-1]["critic_score"] == 8.5


def test_revise_with_a_refused_move_writes_nothing(conn):
    article_id = make_article(conn, status="draft", title="Original")
    with pytest.raises(workflow.TransitionRefused):
        workflow.revise(conn, article_id, "pipeline", to_status="pending", title="Changed")
    assert store.get_article(conn, article_id)["title"] == "Original"
    assert len(store.revisions(conn, article_id)) == 1
    assert store.events(conn, article_id) == []


def test_revise_rejects_unknown_fields_bad_types_and_empty_titles(conn):
    article_id = make_article(conn)
    with pytest.raises(ValueError, match="status"):
        workflow.revise(conn, article_id, "editor", status="approved")
    with pytest.raises(ValueError, match="type"):
        workflow.revise(conn, article_id, "editor", type="opinion")
    with pytest.raises(ValueError, match="title"):
        workflow.revise(conn, article_id, "editor", title="  ")
    assert len(store.revisions(conn, article_id)) == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The Sapphire Reserve is back", {"sapphire-reserve"}),
        ("the SAPPHIRE   reserve, again", {"sapphire-reserve"}),
        ("CSR and Venture X compared", {"sapphire-reserve", "venture-x"}),
        ("Sapphire Reserved seating", set()),
        ("The CSRs are here; VentureXtra too", set()),
        ("Amex Gold\u00ae gets a refresh", {"amex-gold"}),
        ("Capital One Venture X", {"venture-x"}),
    ],
)
def test_link_cards_matches_whole_words_case_insensitively(conn, text, expected):
    seed_sample_cards(conn)
    article_id = make_article(conn, title="Card news", tldr="", body_html=f"<p>{text}</p>")
    assert set(workflow.link_cards(conn, article_id)) == expected


def test_link_cards_reads_title_tldr_and_body_text_not_markup(conn):
    seed_sample_cards(conn)
    in_title = make_article(conn, title="Venture X news", tldr="", body_html="<p>nothing</p>")
    in_tldr = make_article(conn, title="News", tldr="About the Amex Gold.", body_html="<p>nothing</p>")
    in_href = make_article(conn, title="News", tldr="", body_html='<p><a href="https://x.example/csr">link</a></p>')
    assert workflow.link_cards(conn, in_title) == ["venture-x"]
    assert workflow.link_cards(conn, in_tldr) == ["amex-gold"]
    assert workflow.link_cards(conn, in_href) == []


def test_link_cards_is_idempotent_and_follows_edits(conn):
    cards = seed_sample_cards(conn)
    article_id = make_article(conn, body_html="<p>Venture X too.</p>")  # title names the Sapphire Reserve
    workflow.link_cards(conn, article_id)
    workflow.link_cards(conn, article_id)
    rows = conn.execute("SELECT card_id FROM card_changes WHERE article_id = ? ORDER BY card_id", (article_id,))
    assert [r[0] for r in rows] == sorted([cards["sapphire-reserve"]["id"], cards["venture-x"]["id"]])
    conn.execute("UPDATE articles SET body_html = '<p>Nothing else.</p>' WHERE id = ?", (article_id,))
    assert workflow.link_cards(conn, article_id) == ["sapphire-reserve"]
    assert conn.execute("SELECT COUNT(*) FROM article_cards WHERE article_id = ?", (article_id,)).fetchone()[0] == 1


def test_diff_words_marks_deletions_and_insertions():
    segments = workflow.diff_words("The bonus is 80,000 points", "The bonus is 100,000 points now")
    assert ("del", " 80,000") in segments
    assert ("ins", " 100,000") in segments
    assert ("ins", " now") in segments
    assert "".join(t for op, t in segments if op != "ins") == "The bonus is 80,000 points"
    assert "".join(t for op, t in segments if op != "del") == "The bonus is 100,000 points now"


def prose(words, seed):
    """Article-like words: a small vocabulary, so words repeat as they do in prose."""
    vocabulary = "the a of to and in for on is with points miles bonus card annual fee offer spend".split()
    rng = random.Random(seed)
    return [rng.choice(vocabulary) for _ in range(words)]


def test_two_huge_rewrites_get_the_plain_diff_not_a_long_wait():
    """Every word against every word was quadratic: two 20,000-word revisions took 27 s."""
    old, new = " ".join(prose(20_000, 1)), " ".join(prose(20_000, 2))
    assert workflow.diff_words(old, new) == [("del", old), ("ins", new)]


def test_edits_spread_through_a_long_article_are_still_shown_word_by_word():
    paragraphs = [prose(100, n) for n in range(200)]  # 20,000 words
    edited = [p[:50] + ["CHANGED"] + p[51:] if n % 20 == 0 else p for n, p in enumerate(paragraphs)]
    old, new = "\n".join(" ".join(p) for p in paragraphs), "\n".join(" ".join(p) for p in edited)
    segments = workflow.diff_words(old, new)
    assert [t for op, t in segments if op == "ins"] == [" CHANGED"] * 10
    assert [t for op, t in segments if op == "del"] == [" " + p[50] for p in paragraphs[::20]]
    assert "".join(t for op, t in segments if op != "ins") == old
    assert "".join(t for op, t in segments if op != "del") == new


def test_html_to_text_keeps_blocks_and_decodes_entities():
    assert workflow.html_to_text("<p>A &amp; B</p><ul><li>one</li><li>two</li></ul>") == "A & B\none\ntwo"
