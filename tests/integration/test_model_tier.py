"""A real completion comes back through the app from vLLM on the CPU."""

from __future__ import annotations

from typing import Any

import httpx
import openai

from switchboard.accounts.services import create_user
from switchboard.devstack.model_server import ModelServer
from tests.conftest import WebFactory, mint_key_in
from tests.integration.conftest import MODEL, AppFactory
from tests.support.live import LiveServer


def sdk(app: LiveServer) -> openai.OpenAI:
    secret = app.run(mint_key_in(app.app, "tier-user"))
    return openai.OpenAI(base_url=f"{app.url}/v1", api_key=secret, max_retries=0)


def test_chat_completion_through_the_app_with_the_openai_sdk(live_app: AppFactory) -> None:
    app = live_app()
    client = sdk(app)
    completion = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Name three colours."}],
        max_tokens=24,
        temperature=0,
    )
    assert completion.model == MODEL
    assert completion.choices[0].message.content
    assert completion.usage is not None
    assert completion.usage.completion_tokens > 0
    assert completion.usage.prompt_tokens > 5


def test_streamed_chat_arrives_in_chunks_with_usage(
    live_app: AppFactory, model_server: ModelServer
) -> None:
    """Relayed exactly: the same deltas and usage as vLLM sends to a direct client."""
    app = live_app()
    request: dict[str, Any] = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Count from one to ten."}],
        "max_tokens": 30,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    chunks = list(sdk(app).chat.completions.create(**request))
    direct = openai.OpenAI(base_url=f"{model_server.url}/v1", api_key="none", max_retries=0)
    expected = list(direct.chat.completions.create(**request))

    def deltas(stream: list[Any]) -> list[str]:
        return [c.choices[0].delta.content or "" for c in stream if c.choices]

    text = "".join(deltas(chunks))
    assert text.strip()
    assert deltas(chunks) == deltas(expected)
    assert all(c.usage is None for c in chunks[:-1])  # usage only where asked: the last chunk
    usage = chunks[-1].usage
    assert usage is not None
    assert usage == expected[-1].usage
    finished = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finished in (["length"], ["stop"])
    if finished == ["length"]:  # stopped by max_tokens: exactly that many were generated
        assert usage.completion_tokens == 30
    else:  # the model ended its answer before the limit
        assert 0 < usage.completion_tokens <= 30


def test_text_completion_and_models(live_app: AppFactory) -> None:
    app = live_app()
    client = sdk(app)
    assert [m.id for m in client.models.list()] == [MODEL]
    completion = client.completions.create(model=MODEL, prompt="The sky is", max_tokens=8)
    assert completion.choices[0].text
    assert completion.usage is not None
    assert completion.usage.completion_tokens > 0


def test_the_page_shows_an_answer_generated_by_the_model(
    live_app: AppFactory, web: WebFactory
) -> None:
    app = live_app()
    app.run(create_user("reader", password="a long password"))
    session = web(app.url)
    assert session.sign_in("reader", "a long password").status_code == 303
    conversation = session.new_conversation()
    # without JavaScript the form posts, the server generates, then shows the conversation
    sent = session.post(f"/chat/{conversation}/messages", {"content": "Say hello."})
    assert sent.status_code == 303
    page = session.get(f"/chat/{conversation}").text
    answer = page.split('class="body markdown">', 1)[1].split("</div>", 1)[0]
    assert len(answer.strip()) > 0


def test_readiness_reports_database_and_model_server(live_app: AppFactory) -> None:
    app = live_app()
    response = httpx.get(f"{app.url}/readyz", timeout=10)
    assert response.status_code == 200
    assert set(response.json()["checks"].values()) == {"ok"}
