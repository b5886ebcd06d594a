"""Composite indexes for the usage page and metrics: totals per key and per user over time."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from switchboard.usage.tables import UsageRecord

ID = "2026-11-24T06:14:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "usage_records (key_id, created_at) and (user_id, created_at) indexes"

INDEXES = {
    "usage_records_key_time": "(key_id, created_at)",
    "usage_records_user_time": "(user_id, created_at)",
}


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="usage", description=DESCRIPTION)

    async def create_indexes() -> None:
        for name, columns in INDEXES.items():
            await UsageRecord.raw(f"CREATE INDEX IF NOT EXISTS {name} ON usage_records {columns}")

    async def drop_indexes() -> None:
        for name in INDEXES:
            await UsageRecord.raw(f"DROP INDEX IF EXISTS {name}")

    manager.add_raw(create_indexes)
    manager.add_raw_backwards(drop_indexes)
    return manager
