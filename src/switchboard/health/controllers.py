"""Liveness and readiness probes. Readiness details (error text, model server URLs) only for
the callers /metrics trusts: anyone else learns the status alone."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency

from switchboard.db.engine import AnyEngine, ping
from switchboard.gateway.upstream import UpstreamPool
from switchboard.observability.controllers import may_scrape
from switchboard.settings import Settings


class Health(msgspec.Struct, omit_defaults=True):
    status: str
    checks: dict[str, str] = {}
    """What readiness needs, each ``ok`` or why not: the database, Redis, and each model."""
    model_servers: dict[str, str] = {}
    """Each model server (one per address of a name), ``ok`` or why not: for people; one of
    several down does not make the gateway unready."""


class HealthController(Controller):
    tags = ["Operations"]
    include_in_schema = True

    @get("/healthz", operation_id="liveness", summary="The process is up", cache=False)
    async def healthz(self) -> Health:
        return Health(status="ok")

    @get(
        "/readyz",
        operation_id="readiness",
        summary="Database, Redis (when configured) and at least one model server per model "
        "answer (503 otherwise); the checks need the metrics token (or loopback when none is "
        "set)",
        cache=False,
    )
    async def readyz(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AnyEngine],
        upstream_pool: NamedDependency[UpstreamPool],
        settings: NamedDependency[Settings],
        shared_state: NamedDependency[Any],
    ) -> Response[Health]:
        checks: dict[str, str] = {}
        try:
            await asyncio.wait_for(ping(db), timeout=5)
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"down: {type(exc).__name__}: {exc}"[:200]
        if shared_state is not None:  # Redis: sessions, limits and the throttle live there
            try:
                await asyncio.wait_for(shared_state.ping(), timeout=5)
                checks["redis"] = "ok"
            except Exception as exc:
                checks["redis"] = f"down: {type(exc).__name__}: {exc}"[:200]
        models = await upstream_pool.readiness()
        checks.update(models.checks)
        ready = all(state == "ok" for state in checks.values())
        status = "ready" if ready else "unavailable"
        if not may_scrape(request, settings):
            return Response(Health(status), status_code=200 if ready else 503)
        health = Health(status, checks, models.servers)
        return Response(health, status_code=200 if ready else 503)
