"""Liveness and readiness probes."""

from __future__ import annotations

import asyncio

import msgspec
from litestar import Controller, Response, get
from litestar.di import NamedDependency

from switchboard.db.engine import AnyEngine, ping
from switchboard.gateway.upstream import UpstreamPool


class Health(msgspec.Struct):
    status: str
    checks: dict[str, str] = {}


class HealthController(Controller):
    tags = ["Operations"]
    include_in_schema = True

    @get("/healthz", operation_id="liveness", summary="The process is up", cache=False)
    async def healthz(self) -> Health:
        return Health(status="ok")

    @get(
        "/readyz",
        operation_id="readiness",
        summary="Database and model server answer (503 naming what is down otherwise)",
        cache=False,
    )
    async def readyz(
        self, db: NamedDependency[AnyEngine], upstream_pool: NamedDependency[UpstreamPool]
    ) -> Response[Health]:
        checks: dict[str, str] = {}
        try:
            await asyncio.wait_for(ping(db), timeout=5)
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"down: {type(exc).__name__}: {exc}"[:200]
        for url, state in (await upstream_pool.health()).items():
            checks[f"model_server {url}"] = state
        ready = all(state == "ok" for state in checks.values())
        return Response(
            Health(status="ready" if ready else "unavailable", checks=checks),
            status_code=200 if ready else 503,
        )
