"""Piccolo app for budgets and prices."""

import os

from piccolo.conf.apps import AppConfig

from switchboard.budgets.tables import Budget, ModelPrice

APP_CONFIG = AppConfig(
    app_name="budgets",
    migrations_folder_path=os.path.join(os.path.dirname(__file__), "piccolo_migrations"),
    table_classes=[ModelPrice, Budget],
    migration_dependencies=[],
    commands=[],
)
