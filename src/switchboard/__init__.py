"""Switchboard: self-hosted LLM workspace and OpenAI-compatible gateway."""
