"""Piccolo app for chat."""

import os

from piccolo.conf.apps import AppConfig

from switchboard.chat.tables import Conversation, Message, Project

APP_CONFIG = AppConfig(
    app_name="chat",
    migrations_folder_path=os.path.join(os.path.dirname(__file__), "piccolo_migrations"),
    table_classes=[Project, Conversation, Message],
    migration_dependencies=["switchboard.accounts.piccolo_app"],
    commands=[],
)
