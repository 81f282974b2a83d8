"""Connection settings and the online backup."""

import sqlite3
import threading

import store


def test_connection_settings(tmp_path):
    conn = store.connect(str(tmp_path / "db.sqlite"))
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 5000


def test_foreign_keys_are_enforced(tmp_path):
    conn = store.connect(str(tmp_path / "db.sqlite"))
    store.migrate(conn)
    try:
        conn.execute("INSERT INTO card_changes (card_id, article_id, created_at) VALUES (999, 999, 'x')")
    except sqlite3.IntegrityError:
        return
    raise AssertionError("a card change pointing at no card was accepted")


def test_transaction_rolls_back_on_error(tmp_path):
    conn = store.connect(str(tmp_path / "db.sqlite"))
    store.migrate(conn)
    try:
        with store.transaction(conn):
            conn.execute("INSERT INTO feed_sources (name, url) VALUES ('a', 'https://a.example/feed')")
            raise ValueError("boom")
    except ValueError:
        pass
    assert conn.execute("SELECT COUNT(*) FROM feed_sources").fetchone()[0] == 0


def test_backup_is_consistent_while_another_connection_writes(tmp_path):
    path = str(tmp_path / "db.sqlite")
    conn = store.connect(path)
    store.migrate(conn)
    stop = threading.Event()

    def writer():
        w = store.connect(path)
        n = 0
        while not stop.is_set():
            with store.transaction(w):
                w.execute("INSERT INTO feed_sources (name, url) VALUES (?, ?)", (f"s{n}", f"https://s{n}.example/"))
            n += 1
        w.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        dest = store.backup(conn, str(tmp_path / "backups" / "copy.db"))
    finally:
        stop.set()
        thread.join()
    copy = sqlite3.connect(dest)
    assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert copy.execute("SELECT COUNT(*) FROM schema_migrations").fetchone()[0] == store.SCHEMA_VERSION
    assert not (tmp_path / "backups" / "copy.db.tmp").exists()
