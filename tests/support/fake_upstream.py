"""A stand-in for vLLM's OpenAI server as an ``httpx.MockTransport`` (unit tests only)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.support import fake_messages, fake_responses, fake_tools

MODEL = "fake-model"
HOLD_LIMIT = 300.0
"""Seconds a held completion waits at most (a test that never releases it fails, not hangs)."""


def _chunk(
    model: str, delta: dict[str, Any], finish: str | None = None, usage: Any = None
) -> bytes:
    body: dict[str, Any] = {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish, **VLLM_CHOICE_NULLS}],
    }
    if usage is not None:
        body["usage"] = usage
    return b"data: " + json.dumps(body, separators=(",", ":")).encode() + b"\n\n"


def _usage(prompt: int, completion: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


VLLM_CHOICE_NULLS = {"stop_reason": None, "token_ids": None, "routed_experts": None}
VLLM_ANSWER_NULLS = {"prompt_logprobs": None, "prompt_token_ids": None, "kv_transfer_params": None}
"""What vLLM adds to OpenAI's answers, null unless asked for (the gateway drops them)."""
DONE_EVENT = b"data: [DONE]\n\n"
IN_BAND_ERROR = b'data: {"error": {"message": "boom", "type": "server_error", "code": 500}}\n\n'
"""What ``fail_after`` sends: vLLM's report of a failure inside a started stream."""


class _EventStream(httpx.AsyncByteStream):
    """A streamed body whose generator is closed when the client closes the response (so the
    fake sees a hang-up, as a server would)."""

    def __init__(self, events: AsyncGenerator[bytes, None]) -> None:
        self.events = events

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for event in self.events:
            yield event

    async def aclose(self) -> None:
        await self.events.aclose()


@dataclass
class FakeUpstream:
    """Answers like vLLM: echoes the last user message word by word."""

    models: tuple[str, ...] = (MODEL,)
    healthy: bool = True
    requests: list[dict[str, Any]] = field(default_factory=list)
    fail_with: tuple[int, dict[str, Any]] | None = None
    delay: float = 0.0
    """Seconds before a completion answers."""
    hold: threading.Event | None = None
    """When given, completions wait until it is set: they stay in flight, however slow the
    machine, until the test releases them (it is set from the test's thread)."""
    chunk_delay: float = 0.0
    """Seconds before each event of a stream (a slow model)."""
    fail_after: int | None = None
    """A stream breaks off after this many words with an in-band error event (then
    ``[DONE]``), as vLLM reports a failure inside a started stream."""
    stream_endings: list[str] = field(default_factory=list)
    """How each stream ended: ``finished`` (its ``[DONE]`` went out) or ``closed`` (by the
    client, before its end)."""
    prompt_tokens: int = 7
    """The prompt size every answer reports (a misbehaving server may report any number); its
    ``/tokenize`` says the same, as vLLM's does."""
    tokenized: list[dict[str, Any]] = field(default_factory=list)
    """Bodies sent to ``/tokenize`` (apart from ``requests``: those are generations)."""
    tokenize_status: int = 200
    """Set to 404 to play a server without ``/tokenize`` (or a router that does not route it)."""

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    async def handle(self, request: httpx.Request) -> httpx.Response:
        if not self.healthy:
            raise httpx.ConnectError("connection refused", request=request)
        path = request.url.path
        if path == "/health":
            return httpx.Response(200)
        if path == "/v1/models":
            data = [
                {"id": m, "object": "model", "created": 1, "max_model_len": 2048}
                for m in self.models
            ]
            return httpx.Response(200, json={"object": "list", "data": data})
        if request.method == "GET":  # vLLM has no other GET route the gateway calls
            return httpx.Response(404, json={"detail": "Not Found"})
        body = json.loads(request.content)
        if path == "/v1/messages/count_tokens":
            self.tokenized.append(body)
            return httpx.Response(self.tokenize_status, json={"input_tokens": self.prompt_tokens})
        if path == "/tokenize":
            self.tokenized.append(body)
            count = {"count": self.prompt_tokens, "max_model_len": 2048, "tokens": []}
            return httpx.Response(self.tokenize_status, json=count)
        self.requests.append(body)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.hold is not None:
            await asyncio.to_thread(self.hold.wait, HOLD_LIMIT)
        if self.fail_with:
            status, payload = self.fail_with
            return httpx.Response(status, json=payload)
        if path == "/v1/chat/completions" and fake_tools.wants_tools(body):
            return self.tool_calls(body)
        if path == "/v1/messages":
            words = fake_messages.input_text(body).split() or ["ok"]
            if body.get("stream"):
                events = fake_messages.events(body, words, self.prompt_tokens)
                return httpx.Response(
                    200,
                    stream=_EventStream(self.paced(events)),
                    headers={"content-type": "text/event-stream"},
                )
            return httpx.Response(200, json=fake_messages.message(body, words, self.prompt_tokens))
        if path == "/v1/responses":
            words = fake_responses.input_text(body).split() or ["ok"]
            if body.get("stream"):
                events = fake_responses.events(body, words, self.prompt_tokens)
                return httpx.Response(
                    200,
                    stream=_EventStream(self.paced(events)),
                    headers={"content-type": "text/event-stream"},
                )
            answer = fake_responses.response(body, words, self.prompt_tokens, "completed")
            return httpx.Response(200, json=answer)
        words = self.answer_words(body)
        usage = _usage(self.prompt_tokens, len(words))
        if body.get("stream"):
            return httpx.Response(
                200,
                stream=_EventStream(self.paced(self.stream(body, words, usage))),
                headers={"content-type": "text/event-stream"},
            )
        if path == "/v1/completions":
            choice: dict[str, Any] = {
                "index": 0,
                "text": " ".join(words),
                "finish_reason": "stop",
                **VLLM_CHOICE_NULLS,
            }
            return httpx.Response(
                200,
                json={
                    "id": "cmpl-fake",
                    "object": "text_completion",
                    "created": 1,
                    "model": body["model"],
                    "choices": [choice],
                    "usage": usage,
                },
            )
        message = {"role": "assistant", "content": " ".join(words), "reasoning": None}
        return httpx.Response(
            200,
            json={
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "created": 1,
                "model": body["model"],
                "choices": [
                    {"index": 0, "message": message, "finish_reason": "stop", **VLLM_CHOICE_NULLS}
                ],
                "usage": usage,
                **VLLM_ANSWER_NULLS,
            },
        )

    def tool_calls(self, body: dict[str, Any]) -> httpx.Response:
        """The model calls tools (fake_tools.py has vLLM's format)."""
        calls = fake_tools.planned_calls(body)
        deltas = fake_tools.deltas(calls)
        usage = _usage(7, len(deltas))
        if body.get("stream"):
            events = self.stream(body, [], usage, deltas=deltas, finish="tool_calls")
            return httpx.Response(
                200,
                stream=_EventStream(self.paced(events)),
                headers={"content-type": "text/event-stream"},
            )
        choice = {
            "index": 0,
            "message": fake_tools.message(calls),
            "logprobs": None,
            "finish_reason": "tool_calls",
            "stop_reason": None,
        }
        return httpx.Response(
            200,
            json={
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "created": 1,
                "model": body["model"],
                "choices": [choice],
                "usage": usage,
            },
        )

    async def paced(self, events: AsyncIterator[bytes]) -> AsyncGenerator[bytes, None]:
        """The events of one stream, with this fake's per-chunk delay and failure applied."""
        finished = False  # the final [DONE] went out
        try:
            sent = 0
            async for event in events:
                if self.fail_after is not None and sent == 1 + self.fail_after:  # role + words
                    yield IN_BAND_ERROR
                    finished = True
                    yield DONE_EVENT
                    return
                if self.chunk_delay:
                    await asyncio.sleep(self.chunk_delay)
                finished = event == DONE_EVENT or event.startswith(
                    (b"event: response.completed", b"event: message_stop")
                )
                yield event
                sent += 1
        finally:
            self.stream_endings.append("finished" if finished else "closed")

    @staticmethod
    def answer_words(body: dict[str, Any]) -> list[str]:
        if "messages" in body and body["messages"][-1].get("role") == "tool":
            return fake_tools.tool_answer(body)
        if "messages" in body:
            text = str(body["messages"][-1].get("content") or "")
        else:
            text = str(body.get("prompt"))
        return text.split() or ["ok"]

    @staticmethod
    async def stream(
        body: dict[str, Any],
        words: list[str],
        usage: dict[str, int],
        *,
        deltas: list[dict[str, Any]] | None = None,
        finish: str = "stop",
    ) -> AsyncIterator[bytes]:
        """One event per chunk, as vLLM sends them (usage in each one with
        ``continuous_usage_stats``)."""
        model = body["model"]
        options = body.get("stream_options") or {}
        continuous = bool(options.get("include_usage") and options.get("continuous_usage_stats"))
        prompt = usage["prompt_tokens"]

        def so_far(count: int) -> dict[str, int] | None:
            return _usage(prompt, count) if continuous else None

        events = [_chunk(model, {"role": "assistant", "content": ""}, usage=so_far(0))]
        parts = [{"content": word + " "} for word in words] if deltas is None else deltas
        events += [_chunk(model, part, usage=so_far(i + 1)) for i, part in enumerate(parts)]
        events.append(_chunk(model, {}, finish=finish, usage=so_far(len(parts))))
        if options.get("include_usage"):
            final = {
                "id": "chatcmpl-fake",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": model,
                "choices": [],
                "usage": usage,
            }
            events.append(b"data: " + json.dumps(final, separators=(",", ":")).encode() + b"\n\n")
        events.append(DONE_EVENT)
        for event in events:
            yield event
