"""Schema migrations run on start, once, and a file merged with a lower number still runs."""

from __future__ import annotations

import sqlite3

from inspector.storage import db as dbmod


def test_fresh_database_gets_every_migration(tmp_path) -> None:
    path = tmp_path / "m.db"
    top = dbmod.migrate(path)
    con = sqlite3.connect(path)
    versions = [r[0] for r in con.execute("SELECT version FROM schema_migrations ORDER BY 1")]
    assert versions == [v for v, _, _ in dbmod.migrations()]
    assert con.execute("PRAGMA user_version").fetchone()[0] == top
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert dbmod.migrate(path) == top  # idempotent


def test_missing_lower_numbered_migration_is_applied(tmp_path, monkeypatch) -> None:
    path = tmp_path / "m.db"
    real = dbmod.migrations()
    # 7 (subscriptions): no later migration builds on it (009 does on 6's queue column).
    monkeypatch.setattr(dbmod, "migrations", lambda: [m for m in real if m[0] != 7])
    dbmod.migrate(path)
    con = sqlite3.connect(path)
    assert con.execute("SELECT 1 FROM sqlite_master WHERE name = 'subscriptions'").fetchone() \
        is None
    monkeypatch.setattr(dbmod, "migrations", lambda: real)
    dbmod.migrate(path)
    assert con.execute("SELECT 1 FROM sqlite_master WHERE name = 'subscriptions'").fetchone()
