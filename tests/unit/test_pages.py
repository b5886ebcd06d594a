from typing import Any

from litestar.testing import AsyncTestClient

from tests.support.fake_upstream import FakeUpstream


async def test_home_page_has_a_labelled_message_box(client: AsyncTestClient[Any]) -> None:
    response = await client.get("/")
    assert response.status_code == 200
    assert '<label for="message">' in response.text


async def test_asking_shows_the_model_answer(client: AsyncTestClient[Any]) -> None:
    response = await client.post("/ask", data={"message": "echo this please"})
    assert response.status_code == 200
    assert '<p id="answer">echo this please</p>' in response.text


async def test_an_empty_message_is_a_friendly_400(client: AsyncTestClient[Any]) -> None:
    response = await client.post("/ask", data={"message": "   "})
    assert response.status_code == 400
    assert "Type a message first." in response.text


async def test_model_down_shows_a_message_not_a_trace(
    client: AsyncTestClient[Any], fake_upstream: FakeUpstream
) -> None:
    fake_upstream.healthy = False
    response = await client.post("/ask", data={"message": "hi"})
    assert response.status_code == 503
    assert "unavailable" in response.text
    assert "Traceback" not in response.text
