"""Anthropic's Messages API against the real vLLM CPU server (issue 25, item 3): the
``anthropic`` SDK's create, stream and count_tokens through the gateway, with usage recorded."""

from __future__ import annotations

import anthropic
from anthropic.types import MessageParam, TextBlock

from switchboard.usage.tables import UsageRecord
from tests.conftest import mint_key_in
from tests.integration.conftest import MODEL, AppFactory

SAY: list[MessageParam] = [{"role": "user", "content": "Name one colour."}]


def test_the_anthropic_sdk_creates_streams_and_counts(live_app: AppFactory) -> None:
    app = live_app(cache_max_entries=0)
    secret = app.run(mint_key_in(app.app, "claude-fan"))
    with anthropic.Anthropic(
        base_url=app.url, api_key=secret, max_retries=0, timeout=300
    ) as client:
        counted = client.messages.count_tokens(model=MODEL, messages=SAY)
        assert counted.input_tokens > 0
        message = client.messages.create(model=MODEL, max_tokens=12, messages=SAY)
        assert isinstance(message.content[0], TextBlock)
        assert message.content[0].text.strip()
        assert message.usage.input_tokens + (message.usage.cache_read_input_tokens or 0) == (
            counted.input_tokens
        )
        with client.messages.stream(model=MODEL, max_tokens=12, messages=SAY) as stream:
            kinds = {event.type for event in stream}
            final = stream.get_final_message()
        assert {"message_start", "content_block_delta", "message_stop"} <= kinds
        assert final.usage.output_tokens > 0

    app.run(app.app.state.resources.usage.flush())
    rows = app.run(
        UsageRecord.select(
            UsageRecord.status,
            UsageRecord.stream,
            UsageRecord.prompt_tokens,
            UsageRecord.completion_tokens,
        ).run()
    )
    assert [(r["status"], r["stream"]) for r in rows] == [(200, False), (200, True)]
    assert all(r["prompt_tokens"] == counted.input_tokens for r in rows)
    assert all(r["completion_tokens"] > 0 for r in rows)
