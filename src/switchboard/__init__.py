"""Switchboard: self-hosted LLM workspace and OpenAI-compatible gateway."""

import os

__version__ = "0.1.0"

# Piccolo finds its configuration through this variable (its engine finder and migrations).
os.environ.setdefault("PICCOLO_CONF", "switchboard.piccolo_conf")
