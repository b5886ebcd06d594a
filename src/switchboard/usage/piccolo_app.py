"""Piccolo app for usage accounting."""

import os

from piccolo.conf.apps import AppConfig

from switchboard.usage.tables import UsageRecord

APP_CONFIG = AppConfig(
    app_name="usage",
    migrations_folder_path=os.path.join(os.path.dirname(__file__), "piccolo_migrations"),
    table_classes=[UsageRecord],
    migration_dependencies=[],
    commands=[],
)
