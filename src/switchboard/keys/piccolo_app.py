"""Piccolo app for API keys."""

import os

from piccolo.conf.apps import AppConfig

from switchboard.keys.tables import ApiKey

APP_CONFIG = AppConfig(
    app_name="keys",
    migrations_folder_path=os.path.join(os.path.dirname(__file__), "piccolo_migrations"),
    table_classes=[ApiKey],
    migration_dependencies=["switchboard.accounts.piccolo_app"],
    commands=[],
)
