"""Piccolo app for accounts."""

import os

from piccolo.conf.apps import AppConfig

from switchboard.accounts.tables import Session, User

APP_CONFIG = AppConfig(
    app_name="accounts",
    migrations_folder_path=os.path.join(os.path.dirname(__file__), "piccolo_migrations"),
    table_classes=[User, Session],
    migration_dependencies=[],
    commands=[],
)
