"""The images and docker-compose.prod.yml on a real container engine (podman): the stack boots,
serves a real completion through the TLS proxy, runs unprivileged, reports a broken model tier in
its health, and keeps people's conversations across a gateway restart.

Run by `make test-images` (which builds the images first), not by `make test`."""

from __future__ import annotations

import re
import secrets
import ssl

import httpx
import pytest

from tests.images.compose_stack import ComposeStack
from tests.support.waiting import wait_for
from tests.support.web_session import WebSession

# The first test also waits for the stack (vLLM warms up on the CPU); the last restarts vLLM.
pytestmark = pytest.mark.timeout(3600)

MODEL = "smollm2-135m-instruct"
RECOVERY = 900.0
"""Seconds the model container may take to load again after a restart (2 busy cores)."""


def test_readyz_answers_200_through_the_tls_proxy(stack: ComposeStack, https: httpx.Client) -> None:
    ready = https.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["status"] == "ready"
    assert https.get("/healthz").status_code == 200


def test_a_real_chat_completion_through_the_gateway_container(
    stack: ComposeStack, https: httpx.Client
) -> None:
    secret = stack.exec("gateway", "switchboard", "keys", "create", "--user", "api-user").strip()
    assert secret, "the CLI printed no key"
    answer = https.post(
        "/v1/chat/completions",
        headers={"Authorization": f"Bearer {secret.splitlines()[-1]}"},
        json={
            "model": MODEL,
            "max_tokens": 16,
            "temperature": 0,
            "messages": [{"role": "user", "content": "Say hello."}],
        },
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["choices"][0]["message"]["content"].strip()
    assert body["usage"]["completion_tokens"] > 0
    # the model server demands the key the gateway holds (vllm_api_key secret)
    # a table, hence fmt: skip: each flag beside its value, as on a command line
    unauthenticated = stack.exec(
        "gateway", "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
        "http://model:8000/v1/models",
    )  # fmt: skip
    assert unauthenticated == "401"


def test_processes_are_not_root_and_the_gateway_root_is_read_only(stack: ComposeStack) -> None:
    for service in ("gateway", "model-cpu"):
        users = stack.run_podman("top", stack.container(service), "user", "args").stdout
        rows = [line.split(None, 1) for line in users.splitlines()[1:] if line.strip()]
        assert rows, users
        assert all(user != "root" for user, _ in rows), users
    assert stack.exec("gateway", "id", "-u").strip() == "10001"
    denied = stack.run_podman(
        "exec", stack.container("gateway"), "touch", "/opt/venv/x", check=False
    )
    assert denied.returncode != 0
    assert "Read-only file system" in denied.stderr
    stack.exec("gateway", "touch", "/var/lib/switchboard/probe", "/tmp/probe")  # the writable ones


def test_the_proxy_reaches_the_gateway_but_not_the_database_or_the_model(
    stack: ComposeStack,
) -> None:
    def reaches(host: str, port: int) -> bool:
        # a table, hence fmt: skip: each flag beside its value, as on a command line
        probe = stack.run_podman(
            "exec", stack.container("proxy"), "wget", "-q", "-T", "5", "-t", "1", "-O", "/dev/null",
            f"http://{host}:{port}/", check=False,
        )  # fmt: skip
        # wget exits 4 when it cannot connect or resolve; 8 for an HTTP error answer
        return probe.returncode in (0, 8)

    assert reaches("gateway", 8000)
    assert not reaches("postgres", 5432)
    assert not reaches("model", 8000)
    assert not reaches("redis", 6379)


def test_a_conversation_survives_a_gateway_restart(
    stack: ComposeStack, proxy_ca: ssl.SSLContext
) -> None:
    password = secrets.token_urlsafe(16)  # may start with '-': given as --password=…
    stack.exec("gateway", "switchboard", "users", "create", "ada", f"--password={password}")
    with WebSession(stack.url, verify=proxy_ca) as ada:
        signed_in = ada.sign_in("ada", password)
        assert signed_in.status_code == 303, signed_in.text
        assert any(name.startswith("__Host-") for name in ada.http.cookies)  # behind HTTPS
        conversation = ada.new_conversation()
        sent = ada.post(
            f"/chat/{conversation}/messages", {"content": "Name one planet."}, htmx=True
        )
        assert sent.status_code == 200, sent.text
        stream = re.search(r'sse-connect="([^"]+)"', sent.text)
        assert stream, sent.text
        events = ada.stream_events(stream.group(1))
        assert events
        assert events[-1][0] == "done"

        started = stack.inspect("gateway")["State"]
        stack.compose("restart", "gateway")
        assert stack.inspect("gateway")["State"] != started
        stack.wait_health("gateway", "healthy", RECOVERY)
        wait_for(
            lambda: ada.get("/readyz").status_code == 200,
            "/readyz is 200 after the restart",
            300,
            every=2.0,
        )

        # the same sign-in (sessions live in Redis) and the conversation (PostgreSQL) are back
        page = ada.get(f"/chat/{conversation}")
        assert page.status_code == 200, page.text
        assert "Name one planet." in page.text
        assert 'class="body markdown"' in page.text  # the answer too


def test_the_gateway_turns_unhealthy_without_the_model_and_recovers(
    stack: ComposeStack, https: httpx.Client
) -> None:
    """Last: it stops the model container."""
    assert stack.health("gateway") == "healthy"
    stack.compose("stop", "model-cpu")
    try:
        stack.wait_health("gateway", "unhealthy", 300)
        assert https.get("/readyz").status_code == 503
    finally:
        stack.compose("start", "model-cpu")
    stack.wait_health("model-cpu", "healthy", RECOVERY)
    stack.wait_health("gateway", "healthy", 300)
    wait_for(
        lambda: https.get("/readyz").status_code == 200, "/readyz is 200 again", 120, every=2.0
    )
