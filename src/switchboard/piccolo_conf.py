"""Piccolo's configuration module (``PICCOLO_CONF=switchboard.piccolo_conf``).

``DB`` starts from the settings; ``switchboard.db.registry.install_engine`` swaps it (and rebinds
every table) when the app is built with other settings, as the tests do.
"""

from piccolo.conf.apps import AppRegistry

from switchboard.db.engine import build_engine
from switchboard.settings import get_settings

DB = build_engine(get_settings().resolved_database_url)

APP_REGISTRY = AppRegistry(
    apps=[
        "switchboard.accounts.piccolo_app",
        "switchboard.keys.piccolo_app",
        "switchboard.usage.piccolo_app",
        "switchboard.chat.piccolo_app",
        "switchboard.budgets.piccolo_app",
        "switchboard.responses.piccolo_app",
    ]
)
