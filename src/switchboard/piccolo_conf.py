"""Piccolo's configuration module (``PICCOLO_CONF=switchboard.piccolo_conf``).

``DB`` is whatever engine ``switchboard.db.registry`` holds: the one the app installed from its
settings, else one built from the process's settings (Piccolo's own CLI). It is answered by a
module ``__getattr__`` (PEP 562), so installing another engine assigns nothing here.
"""

from piccolo.conf.apps import AppRegistry

from switchboard.db.engine import AnyEngine
from switchboard.db.registry import current_engine

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


def __getattr__(name: str) -> AnyEngine:
    if name == "DB":
        return current_engine()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
