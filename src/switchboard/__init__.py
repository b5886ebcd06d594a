"""Switchboard: self-hosted LLM workspace and OpenAI-compatible gateway."""

__version__ = "0.1.0"
