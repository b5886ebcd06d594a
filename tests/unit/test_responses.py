"""``/v1/responses`` (issue 21, item 1) against the fake model server, through the official SDK:
create, stream with the Responses event types, retrieve, delete, input items, chaining with
``previous_response_id`` (kept by the gateway, not vLLM), ``store``, ``instructions``, function
tools, ``max_output_tokens``; what a self-hosted engine cannot do is a clear 400; usage rows and
limits as for chat; nobody reads another's response."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from switchboard.usage.tables import UsageRecord
from tests.conftest import mint_key_in
from tests.support.fake_upstream import FakeUpstream
from tests.support.live import LiveServer
from tests.support.waiting import wait_for

MODEL = "fake-model"


@pytest.fixture
def sdk(live_fake: LiveServer) -> Iterator[openai.OpenAI]:
    secret = live_fake.run(mint_key_in(live_fake.app, "alice"))
    with openai.OpenAI(base_url=f"{live_fake.url}/v1", api_key=secret, max_retries=0) as client:
        yield client


def other_sdk(live: LiveServer) -> openai.OpenAI:
    secret = live.run(mint_key_in(live.app, "mallory"))
    return openai.OpenAI(base_url=f"{live.url}/v1", api_key=secret, max_retries=0)


def rows(live: LiveServer) -> list[dict[str, Any]]:
    live.run(live.app.state.resources.usage.flush())
    query = UsageRecord.select(
        UsageRecord.status,
        UsageRecord.stream,
        UsageRecord.prompt_tokens,
        UsageRecord.completion_tokens,
    ).order_by(UsageRecord.id)
    return list(live.run(query.run()))


def test_create_retrieve_and_delete_a_stored_response(
    sdk: openai.OpenAI, live_fake: LiveServer, fake_upstream: FakeUpstream
) -> None:
    created = sdk.responses.create(
        model=MODEL, input="one two three", instructions="Be brief.", max_output_tokens=50
    )
    assert created.output_text == "one two three"
    assert created.usage is not None
    assert (created.usage.input_tokens, created.usage.output_tokens) == (7, 3)
    # the SDK's Response model has no ``store`` field; the extra field is kept all the same
    assert created.to_dict()["store"] is True
    sent = fake_upstream.requests[-1]
    assert sent["store"] is False  # the gateway keeps it, not the model server
    assert (sent["instructions"], sent["max_output_tokens"]) == ("Be brief.", 50)

    again = sdk.responses.retrieve(created.id)
    assert (again.id, again.output_text) == (created.id, "one two three")
    items = sdk.responses.input_items.list(created.id)
    assert [item.type for item in items.data] == ["message"]

    sdk.responses.delete(created.id)  # the SDK returns nothing on success, raises on an error
    with pytest.raises(openai.NotFoundError):
        sdk.responses.retrieve(created.id)
    with pytest.raises(openai.NotFoundError):
        sdk.responses.delete(created.id)
    assert [(r["status"], r["prompt_tokens"], r["completion_tokens"]) for r in rows(live_fake)] == [
        (200, 7, 3)
    ]


def test_a_chain_works_from_the_gateways_store(
    sdk: openai.OpenAI, fake_upstream: FakeUpstream
) -> None:
    first = sdk.responses.create(model=MODEL, input="red green")
    second = sdk.responses.create(
        model=MODEL, input="blue", previous_response_id=first.id, instructions="Only now."
    )
    assert second.previous_response_id == first.id
    sent = fake_upstream.requests[-1]
    assert "previous_response_id" not in sent
    assert [(item.get("role"), item["type"]) for item in sent["input"]] == [
        ("user", "message"),  # the first input
        ("assistant", "message"),  # the first answer
        ("user", "message"),  # the new input
    ]
    assert sent["input"][1]["content"][0]["text"] == "red green"
    third = sdk.responses.create(model=MODEL, input="gold", previous_response_id=second.id)
    assert len(fake_upstream.requests[-1]["input"]) == 5  # the whole chain, in order
    assert "instructions" not in fake_upstream.requests[-1]  # not carried over, as OpenAI
    assert third.output_text == "gold"


def test_item_references_are_resolved_from_the_callers_stored_responses(
    sdk: openai.OpenAI, live_fake: LiveServer, fake_upstream: FakeUpstream
) -> None:
    """``item_reference`` items (as the SDKs send for an item they got earlier) are replaced by
    the stored item: one of an earlier output or input, the owner's only; the model server
    sees a self-contained request, and the new response stores the items themselves."""
    first = sdk.responses.create(model=MODEL, input="red green")
    said = first.output[0].to_dict()
    thought: Any = {"type": "reasoning", "id": "rs_mine_1", "summary": []}
    asked: Any = {"type": "message", "role": "user", "content": "why?"}
    reference: Any = {"type": "item_reference", "id": said["id"]}
    second = sdk.responses.create(model=MODEL, input=[reference, thought, asked])
    assert fake_upstream.requests[-1]["input"] == [said, thought, asked]
    # an earlier input item, and one from the output of the response chained to
    again: Any = [{"type": "item_reference", "id": i} for i in ("rs_mine_1", second.output[0].id)]
    third = sdk.responses.create(model=MODEL, input=again, previous_response_id=first.id)
    sent = fake_upstream.requests[-1]["input"]
    assert sent[2:] == [thought, second.output[0].to_dict()]  # after the chain's two
    kinds = [i.type for i in sdk.responses.input_items.list(third.id, order="asc").data]
    assert kinds == ["message", "message", "reasoning", "message"]  # stored as items

    with pytest.raises(openai.NotFoundError) as missing:
        sdk.responses.create(model=MODEL, input=[{"type": "item_reference", "id": "msg_nope"}])
    assert isinstance(missing.value.body, dict)
    assert missing.value.body["param"] == "input[0].id"
    assert "msg_nope" in missing.value.body["message"]
    with other_sdk(live_fake) as mallory, pytest.raises(openai.NotFoundError):
        mallory.responses.create(model=MODEL, input=[reference])


def test_store_false_keeps_nothing(sdk: openai.OpenAI) -> None:
    created = sdk.responses.create(model=MODEL, input="secret", store=False)
    assert created.to_dict()["store"] is False
    with pytest.raises(openai.NotFoundError):
        sdk.responses.retrieve(created.id)
    with pytest.raises(openai.NotFoundError) as missing:
        sdk.responses.create(model=MODEL, input="x", previous_response_id=created.id)
    assert isinstance(missing.value.body, dict)
    assert missing.value.body["param"] == "previous_response_id"


def test_nobody_reads_chains_or_deletes_anothers_response(
    sdk: openai.OpenAI, live_fake: LiveServer
) -> None:
    mine = sdk.responses.create(model=MODEL, input="mine alone")
    with other_sdk(live_fake) as mallory:
        with pytest.raises(openai.NotFoundError):
            mallory.responses.retrieve(mine.id)
        with pytest.raises(openai.NotFoundError):
            mallory.responses.create(model=MODEL, input="x", previous_response_id=mine.id)
        with pytest.raises(openai.NotFoundError):
            mallory.responses.delete(mine.id)
    assert sdk.responses.retrieve(mine.id).output_text == "mine alone"


def test_streaming_has_the_responses_event_types_and_is_stored(
    sdk: openai.OpenAI, live_fake: LiveServer
) -> None:
    with sdk.responses.stream(model=MODEL, input="a b c") as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert kinds[0] == "response.created"
    assert kinds.count("response.output_text.delta") == 3
    assert kinds[-1] == "response.completed"
    assert final.output_text == "a b c"
    assert sdk.responses.retrieve(final.id).output_text == "a b c"
    assert [(r["status"], r["stream"], r["completion_tokens"]) for r in rows(live_fake)] == [
        (200, True, 3)
    ]


def test_function_tools_are_relayed_and_hosted_tools_refused(
    sdk: openai.OpenAI, fake_upstream: FakeUpstream
) -> None:
    tool = {
        "type": "function",
        "name": "lookup",
        "description": "Find a word",
        "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
    }
    # as a client writes it, without the ``strict`` the SDK's FunctionToolParam requires
    sdk.responses.create(model=MODEL, input="x", tools=[tool])  # type: ignore[list-item]
    assert fake_upstream.requests[-1]["tools"] == [tool]
    for hosted in ({"type": "web_search"}, {"type": "file_search", "vector_store_ids": ["v"]}):
        with pytest.raises(openai.BadRequestError) as refused:
            # plain dicts: the SDK's ToolParam union cannot tell these apart
            sdk.responses.create(model=MODEL, input="x", tools=[hosted])  # type: ignore[list-item]
        assert isinstance(refused.value.body, dict)
        assert refused.value.body["param"] == "tools[0].type"
        assert "Hosted tools" in refused.value.message


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"background": True}, "background"),
        ({"conversation": "conv_1"}, "conversation"),
        ({"prompt": {"id": "pmpt_1"}}, "prompt"),
        ({"max_output_tokens": 0}, "max_output_tokens"),
        ({"made_up": 1}, "made_up"),
        ({"moderation": {"model": "omni-moderation-latest"}}, "moderation"),
        ({"prompt_cache_retention": "forever"}, "prompt_cache_retention"),
        ({"reasoning": {"context": "some_turns"}}, "reasoning.context"),
        # not one of the values vLLM takes: it would answer 400 itself (schemathesis found it)
        ({"include": ["message.output_text.logprobs", "*cH"]}, "include[1]"),
        ({"include": ["web_search_call.results"]}, "include[0]"),
    ],
)
def test_what_cannot_be_served_is_a_clear_400(
    sdk: openai.OpenAI, fake_upstream: FakeUpstream, extra: dict[str, Any], param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        sdk.responses.create(model=MODEL, input="x", extra_body=extra)
    assert isinstance(refused.value.body, dict)
    assert refused.value.body["param"] == param
    assert fake_upstream.requests == []


def test_limits_apply_and_an_unknown_model_is_404(live_fake: LiveServer) -> None:
    secret = live_fake.run(mint_key_in(live_fake.app, "limited", rpm=1))
    headers = {"Authorization": f"Bearer {secret}"}
    body = {"model": MODEL, "input": "hi"}
    with httpx.Client(base_url=live_fake.url, headers=headers, timeout=30) as http:
        first = http.post("/v1/responses", json=body)
        assert first.status_code == 200
        assert "x-ratelimit-remaining-requests" in first.headers
        limited = http.post("/v1/responses", json=body)
        assert limited.status_code == 429
        assert limited.json()["error"]["code"] == "rate_limit_exceeded"
    with httpx.Client(base_url=live_fake.url, timeout=30) as http:
        secret = live_fake.run(mint_key_in(live_fake.app, "bob"))
        unknown = http.post(
            "/v1/responses",
            json={"model": "gpt-x", "input": "hi"},
            headers={"Authorization": f"Bearer {secret}"},
        )
        assert unknown.status_code == 404
        anonymous = http.post("/v1/responses", json=body)
        assert anonymous.status_code == 401


def test_a_stream_left_early_counts_what_it_was_sent(
    live_fake: LiveServer, fake_upstream: FakeUpstream
) -> None:
    secret = live_fake.run(mint_key_in(live_fake.app, "quitter"))
    fake_upstream.chunk_delay = 0.05
    body = {"model": MODEL, "input": "one two three four five six seven eight", "stream": True}
    deltas = 0
    with (
        httpx.Client(base_url=live_fake.url, timeout=30) as http,
        http.stream(
            "POST", "/v1/responses", json=body, headers={"Authorization": f"Bearer {secret}"}
        ) as response,
    ):
        for line in response.iter_lines():
            deltas += line == "event: response.output_text.delta"
            if deltas == 3:
                break  # the caller leaves
    assert deltas == 3

    wait_for(lambda: rows(live_fake), "the usage row of the stream left early")
    [row] = rows(live_fake)
    assert (row["status"], row["stream"]) == (499, True)
    assert 3 <= row["completion_tokens"] < 8


def test_openais_newer_fields_are_accepted_and_not_relayed(
    sdk: openai.OpenAI, fake_upstream: FakeUpstream
) -> None:
    """SDK 3.54's Responses fields for OpenAI's own programs, caching, background windows,
    compaction and images: accepted, checked, and dropped (ADR 0010); ``max_tool_calls`` 0."""
    dropped = {
        "access_programs": {"cyber": "standard"},
        "background_options": {"completion_window": "soonest"},
        "context_management": [{"type": "compaction", "compact_threshold": 1000}],
        "image": {"context_compression": "auto"},
        "prompt_cache_options": {"mode": "implicit", "ttl": "30m"},
        "prompt_cache_retention": "24h",
    }
    reasoning = {"effort": "low", "context": "current_turn"}
    sdk.responses.create(
        model=MODEL,
        input="x",
        max_tool_calls=0,
        extra_body={**dropped, "reasoning": reasoning},
    )
    sent = fake_upstream.requests[-1]
    assert not set(dropped) & set(sent), sent
    assert sent["reasoning"] == {"effort": "low"}
    assert sent["max_tool_calls"] == 0
