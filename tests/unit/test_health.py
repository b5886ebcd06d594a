from typing import Any

from litestar.testing import AsyncTestClient

from tests.support.fake_upstream import FakeUpstream


async def test_liveness_answers_without_dependencies(client: AsyncTestClient[Any]) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert len(response.headers["x-request-id"]) == 32


async def test_readiness_is_200_when_database_and_model_server_answer(
    client: AsyncTestClient[Any],
) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json() == {
        "status": "ready",
        "checks": {"database": "ok", "model_server http://upstream.test/v1": "ok"},
    }


async def test_readiness_is_503_naming_the_model_server_when_it_is_down(
    client: AsyncTestClient[Any], fake_upstream: FakeUpstream
) -> None:
    fake_upstream.healthy = False
    response = await client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["model_server http://upstream.test/v1"].startswith("unreachable")
    fake_upstream.healthy = True
    assert (await client.get("/readyz")).status_code == 200


async def test_a_sane_incoming_request_id_is_kept(client: AsyncTestClient[Any]) -> None:
    response = await client.get("/healthz", headers={"X-Request-ID": "trace-1234567"})
    assert response.headers["x-request-id"] == "trace-1234567"
    response = await client.get("/healthz", headers={"X-Request-ID": "bad id\n"})
    assert response.headers["x-request-id"] != "bad id\n"
