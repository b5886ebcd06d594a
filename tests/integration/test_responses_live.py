"""``/v1/responses`` against the real vLLM CPU server (issue 21, item 1): the official SDK's
create and stream, a chain continued on another gateway (the store is the gateway's database,
not a replica's memory), and a minimal openai-agents agent. Answers are kept short."""

from __future__ import annotations

import asyncio
from typing import Any

import openai
import pytest
from agents import Agent, ModelSettings, OpenAIResponsesModel, Runner, set_tracing_disabled

from switchboard.usage.tables import UsageRecord
from tests.conftest import mint_key_in
from tests.integration.conftest import MODEL, AppFactory
from tests.support.live import LiveServer
from tests.support.responses_items import CONVERSATION

SHORT = 12
GREETING = 256  # the agents SDK fails a run that ends "incomplete": room for the whole greeting


def client(app: LiveServer, secret: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{app.url}/v1", api_key=secret, max_retries=0, timeout=300)


def usage_rows(app: LiveServer, *others: LiveServer) -> list[dict[str, Any]]:
    """Every usage row in the database the gateways share, once each has written its own."""
    for gateway in (app, *others):
        gateway.run(gateway.app.state.resources.usage.flush())
    query = UsageRecord.select(
        UsageRecord.status,
        UsageRecord.stream,
        UsageRecord.prompt_tokens,
        UsageRecord.completion_tokens,
    ).order_by(UsageRecord.created_at)  # each gateway writes its own rows, in its own time
    return list(app.run(query.run()))


def test_the_sdk_creates_streams_and_chains_across_gateways(live_app: AppFactory) -> None:
    first_gateway = live_app(cache_max_entries=0)
    second_gateway = live_app(cache_max_entries=0)  # same database (the test's folder)
    secret = first_gateway.run(mint_key_in(first_gateway.app, "ada"))
    with client(first_gateway, secret) as sdk, client(second_gateway, secret) as other:
        created = sdk.responses.create(
            model=MODEL,
            input="Name one colour.",
            instructions="Answer in one word.",
            max_output_tokens=SHORT,
        )
        assert created.status in ("completed", "incomplete")
        assert created.output_text.strip()
        assert created.usage is not None
        assert created.usage.output_tokens > 0

        with other.responses.stream(
            model=MODEL,
            input="And another one?",
            previous_response_id=created.id,
            max_output_tokens=SHORT,
        ) as stream:
            kinds = {event.type for event in stream}
            second = stream.get_final_response()
        assert {"response.created", "response.output_text.delta"} <= kinds
        assert second.output_text.strip()
        assert sdk.responses.retrieve(second.id).id == second.id  # stored by the other gateway
        items = sdk.responses.input_items.list(second.id).data
        assert len(items) >= 3  # the first question, its answer, the new question

    rows = usage_rows(first_gateway, second_gateway)
    assert [(r["status"], r["stream"]) for r in rows] == [(200, False), (200, True)]
    assert all(r["prompt_tokens"] > 0 and r["completion_tokens"] > 0 for r in rows)


def test_a_minimal_openai_agents_agent_runs_through_the_gateway(live_app: AppFactory) -> None:
    app = live_app(cache_max_entries=0)
    secret = app.run(mint_key_in(app.app, "agent"))
    set_tracing_disabled(True)  # no trace exporter: nothing leaves this machine

    async def run() -> str:
        sdk = openai.AsyncOpenAI(base_url=f"{app.url}/v1", api_key=secret, max_retries=0)
        model = OpenAIResponsesModel(model=MODEL, openai_client=sdk)
        agent = Agent(
            name="greeter",
            instructions="Reply with a short greeting.",
            model=model,
            model_settings=ModelSettings(max_tokens=GREETING, temperature=0),
        )
        result = await Runner.run(agent, "Hello!")
        await sdk.close()
        return str(result.final_output)

    assert asyncio.run(run()).strip()
    assert [r["status"] for r in usage_rows(app)] == [200]


@pytest.mark.parametrize("tool", [{"type": "web_search"}, {"type": "code_interpreter"}])
def test_hosted_tools_are_refused_before_the_model(
    live_app: AppFactory, tool: dict[str, Any]
) -> None:
    app = live_app()
    secret = app.run(mint_key_in(app.app, "ada"))
    with client(app, secret) as sdk, pytest.raises(openai.BadRequestError) as refused:
        # a plain dict: the SDK's ToolParam union cannot tell it apart
        sdk.responses.create(model=MODEL, input="x", tools=[tool])  # type: ignore[list-item]
    assert isinstance(refused.value.body, dict)
    assert refused.value.body["param"] == "tools[0].type"


@pytest.mark.parametrize("last", ["completed", "in_progress"])
def test_every_published_item_type_is_answered_by_vllm(live_app: AppFactory, last: str) -> None:
    """One item of each type the gateway publishes, in one request; an unfinished last
    message is continued (vLLM's partial completion)."""
    app = live_app(cache_max_entries=0)
    secret = app.run(mint_key_in(app.app, "ada"))
    items = [*CONVERSATION[:-1], {**CONVERSATION[-1], "status": last}]
    with client(app, secret) as sdk:
        created = sdk.responses.create(model=MODEL, input=items, max_output_tokens=SHORT)  # type: ignore[arg-type]
    assert created.status in ("completed", "incomplete")
    assert created.usage is not None
    assert created.usage.input_tokens > 0
