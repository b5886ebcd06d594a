"""Piccolo app for stored responses."""

import os

from piccolo.conf.apps import AppConfig

from switchboard.responses.tables import StoredResponse

APP_CONFIG = AppConfig(
    app_name="responses",
    migrations_folder_path=os.path.join(os.path.dirname(__file__), "piccolo_migrations"),
    table_classes=[StoredResponse],
    migration_dependencies=[],
    commands=[],
)
