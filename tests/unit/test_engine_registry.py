"""The engine Piccolo uses is installed through Piccolo's public lookups, not by assignment."""

from __future__ import annotations

from pathlib import Path

from piccolo.apps.migrations.tables import Migration
from piccolo.conf.apps import Finder

import switchboard.piccolo_conf as piccolo_conf
from switchboard.accounts.tables import User
from switchboard.chat.tables import Conversation
from switchboard.db.engine import build_engine
from switchboard.db.registry import current_engine, install_engine


def test_installing_an_engine_rebinds_every_table_and_assigns_nothing_to_the_config(
    tmp_path: Path,
) -> None:
    before = current_engine()
    engine = build_engine(f"sqlite:///{tmp_path / 'other.sqlite3'}")
    try:
        install_engine(engine)
        assert "DB" not in vars(piccolo_conf)
        assert Finder().get_engine() is engine
        assert User._meta.db is engine
        assert Conversation._meta.db is engine
        assert Migration._meta.db is engine
    finally:
        install_engine(before)
    assert User._meta.db is before
