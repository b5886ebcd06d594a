"""`make backup` / `make restore` (deploy/backup.sh, deploy/restore.sh) against a real
PostgreSQL: back up, drop everything, restore, and the conversations are back."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from tests.conftest import REPO_ROOT
from tests.support.postgres import PostgresDatabase

pytestmark = pytest.mark.postgres


def make(target: str, postgres: PostgresDatabase, backup: Path) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": f"{postgres.server.bindir}:{os.environ['PATH']}",
        "BACKUP_DATABASE_URL": postgres.url,
        "HOME": str(backup.parent),
    }
    return subprocess.run(
        ["make", "--no-print-directory", target, f"BACKUP={backup}"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def query(url: str, sql: str) -> list[asyncpg.Record]:
    async def run() -> list[asyncpg.Record]:
        connection = await asyncpg.connect(url)
        try:
            if sql.lstrip().upper().startswith("SELECT"):
                return list(await connection.fetch(sql))
            await connection.execute(sql)  # several statements allowed, no rows
            return []
        finally:
            await connection.close()

    return asyncio.run(run())


def test_backup_drop_restore_brings_the_conversations_back(
    postgres: PostgresDatabase, tmp_path: Path
) -> None:
    # the real schema (migrations by the CLI) and a user, then a conversation with a message
    cli = Path(sys.executable).parent / "switchboard"
    env = {
        "PATH": os.environ["PATH"],
        "SWITCHBOARD_DATABASE_URL": postgres.url,
        "SWITCHBOARD_DATA_DIR": str(tmp_path),
    }
    created = subprocess.run(
        [str(cli), "users", "create", "kept"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert created.returncode == 0, created.stderr
    query(
        postgres.url,
        """
        WITH c AS (INSERT INTO conversations ("user", title)
                   SELECT id, 'kept across a restore' FROM users WHERE username = 'kept'
                   RETURNING id)
        INSERT INTO messages (conversation, role, content) SELECT id, 'user', 'hello' FROM c
    """,
    )

    backup = tmp_path / "switchboard.dump"
    made = make("backup", postgres, backup)
    assert made.returncode == 0, made.stderr
    assert backup.stat().st_size > 0
    assert not backup.with_suffix(".dump.partial").exists()

    query(postgres.url, "DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    with pytest.raises(asyncpg.UndefinedTableError):
        query(postgres.url, "SELECT 1 FROM conversations")

    restored = make("restore", postgres, backup)
    assert restored.returncode == 0, restored.stderr
    rows = query(
        postgres.url,
        """
        SELECT c.title, m.content, u.username FROM conversations c
        JOIN messages m ON m.conversation = c.id JOIN users u ON u.id = c."user"
    """,
    )
    assert [tuple(row) for row in rows] == [("kept across a restore", "hello", "kept")]
    # and the app still finds its schema complete: migrating again has nothing to do
    again = subprocess.run(
        [str(cli), "migrate"], env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert again.returncode == 0, again.stderr


def test_restore_refuses_a_missing_file(postgres: PostgresDatabase, tmp_path: Path) -> None:
    result = make("restore", postgres, tmp_path / "absent.dump")
    assert result.returncode != 0
    assert "missing or empty" in result.stderr
