"""Migrations: ordered, recorded, idempotent; from empty and from every earlier version."""

import sqlite3

import pytest

import store


def tables(conn):
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def test_from_empty_applies_every_migration_in_order(tmp_path):
    conn = store.connect(str(tmp_path / "db.sqlite"))
    applied = store.migrate(conn)
    assert applied == [name for name, _ in store.MIGRATIONS]
    rows = conn.execute("SELECT version, name FROM schema_migrations ORDER BY version").fetchall()
    assert [tuple(r) for r in rows] == [(i + 1, n) for i, (n, _) in enumerate(store.MIGRATIONS)]
    expected = {"cards", "card_changes", "articles", "article_revisions", "article_events", "article_cards"}
    expected |= {"feed_sources", "raw_items", "clusters", "pipeline_runs"}
    assert expected <= tables(conn)


def test_running_again_does_nothing(tmp_path):
    conn = store.connect(str(tmp_path / "db.sqlite"))
    store.migrate(conn)
    assert store.migrate(conn) == []
    assert store.schema_version(conn) == store.SCHEMA_VERSION


@pytest.mark.parametrize("start", range(1, store.SCHEMA_VERSION))
def test_from_each_previous_version_keeps_data(tmp_path, start):
    conn = store.connect(str(tmp_path / "db.sqlite"))
    store.migrate(conn, target=start)
    assert store.schema_version(conn) == start
    # A card as that version stored it: only the first migration's columns.
    conn.execute(
        "INSERT INTO cards (slug, name, issuer, network, category, annual_fee_usd, official_url, facts_checked,"
        " verdict, keywords, sections, content_hash, created_at, updated_at)"
        " VALUES ('sample-card', 'Sample Card', 'Sample Bank', 'Visa', 'Travel', 95, 'https://example.com/card',"
        " '2026-11-01', 'Fine.', '[]', '{}', 'old', 'then', 'then')"
    )
    applied = store.migrate(conn)
    assert len(applied) == store.SCHEMA_VERSION - start
    assert store.get_card(conn, "sample-card")["name"] == "Sample Card"


def test_a_newer_database_is_refused(tmp_path):
    conn = store.connect(str(tmp_path / "db.sqlite"))
    store.migrate(conn)
    conn.execute("INSERT INTO schema_migrations VALUES (999, 'future', 'now')")
    with pytest.raises(RuntimeError, match="newer"):
        store.migrate(conn)


def test_failed_migration_leaves_previous_version(tmp_path, monkeypatch):
    conn = store.connect(str(tmp_path / "db.sqlite"))
    store.migrate(conn, target=1)
    broken = store.MIGRATIONS[:1] + [("broken", "CREATE TABLE articles (id INTEGER); CREATE TABLE oops (")]
    monkeypatch.setattr(store, "MIGRATIONS", broken)
    with pytest.raises(sqlite3.Error):
        store.migrate(conn, target=2)
    assert store.schema_version(conn) == 1
    assert "articles" not in tables(conn)
