"""A fake model that answers in Markdown: it echoes the last user message split on single
spaces (``FakeUpstream`` splits on any whitespace), so the message's newlines survive."""

from __future__ import annotations

from typing import Any

from tests.support.fake_upstream import FakeUpstream


class MarkdownUpstream(FakeUpstream):
    @staticmethod
    def answer_words(body: dict[str, Any]) -> list[str]:
        return str(body["messages"][-1].get("content") or "ok").split(" ")
