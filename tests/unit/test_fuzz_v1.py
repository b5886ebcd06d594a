"""Property-based fuzz of `/v1` bodies (issue 24): whatever a caller sends, the answer is never a
5xx. Hostile values (huge and negative numbers, NUL, lone surrogates, CR/LF, deep nesting,
invalid UTF-8, wrong types) go into every field the API knows and into some it does not, and
into raw bytes; the app runs on a socket in front of the fake model server. Deterministic
(``derandomize``) so that CI runs the same cases each time; the examples grow with the fields.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from switchboard.gateway.protocol import ChatCompletionRequest, CompletionRequest
from tests.conftest import mint_key_in
from tests.support.live import LiveServer

FUZZ = settings(
    max_examples=400,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
PATHS: dict[str, type[msgspec.Struct]] = {
    "/v1/chat/completions": ChatCompletionRequest,
    "/v1/completions": CompletionRequest,
}

texts = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["\x00", "a\x00b", "\ud800", "\r", "\r\n", "\n\n", "fake-model", "", " "]),
)
numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, 2**31 - 1, 2**31, 2**63 - 1, 2**63, 2**64, 10**30]),
    st.floats(allow_nan=False, allow_infinity=False),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, texts)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(texts, inner, max_size=4)),
    max_leaves=12,
)


def field_names(request_type: type[msgspec.Struct]) -> list[str]:
    return [*request_type.__struct_fields__, "unknown_field", "chat_template", "vllm_xargs"]


def valid_body(path: str) -> dict[str, Any]:
    if path.endswith("/chat/completions"):
        return {"model": "fake-model", "messages": [{"role": "user", "content": "hi"}]}
    return {"model": "fake-model", "prompt": "hi"}


@st.composite
def hostile_bodies(draw: st.DrawFn, path: str) -> bytes:
    body = valid_body(path)
    for name in draw(st.lists(st.sampled_from(field_names(PATHS[path])), max_size=3)):
        body[name] = draw(json_values)
    if path.endswith("/chat/completions") and draw(st.booleans()):
        message = draw(st.dictionaries(texts, json_values, max_size=3))
        message.setdefault("role", draw(st.sampled_from(["user", "system", "tool", "x"])))
        body["messages"] = [message]
    raw = json.dumps(body).encode()
    mutation = draw(st.sampled_from(["none", "insert", "truncate", "nest"]))
    if mutation == "insert":
        at = draw(st.integers(0, len(raw)))
        raw = raw[:at] + draw(st.binary(min_size=1, max_size=4)) + raw[at:]
    elif mutation == "truncate":
        raw = raw[: draw(st.integers(0, len(raw)))]
    elif mutation == "nest":
        depth = draw(st.sampled_from([63, 65, 600, 1000, 5000]))
        raw = raw[:-1] + b', "tools": ' + b"[" * depth + b"]" * depth + b"}"
    return raw


@pytest.fixture
def api(live_fake: LiveServer) -> Iterator[httpx.Client]:
    secret = live_fake.run(mint_key_in(live_fake.app, "fuzzer", rpm=10**6, tpm=10**9))
    headers = {"Authorization": f"Bearer {secret}", "content-type": "application/json"}
    with httpx.Client(base_url=live_fake.url, headers=headers, timeout=60) as client:
        yield client


@pytest.mark.parametrize("path", sorted(PATHS))
def test_no_v1_body_reaches_a_5xx(api: httpx.Client, path: str) -> None:
    @FUZZ
    @given(raw=hostile_bodies(path))
    def check(raw: bytes) -> None:
        response = api.post(path, content=raw)
        assert response.status_code < 500, (raw[:300], response.text[:300])
        error = response.json().get("error") if response.status_code >= 400 else None
        if response.status_code >= 400:
            assert isinstance(error, dict), response.text[:300]
            assert {"message", "type", "param", "code"} <= set(error)

    check()


@FUZZ
@given(model=texts, header=st.sampled_from(["", "no-cache", "no-store", "\x7f"]))
def test_no_model_lookup_or_header_reaches_a_5xx(
    api: httpx.Client, model: str, header: str
) -> None:
    response = api.get("/v1/models/" + quote(model.encode("utf-8", "surrogatepass"), safe=""))
    assert response.status_code < 500, (model, response.text[:300])
    if header.isprintable():
        body = valid_body("/v1/chat/completions")
        response = api.post("/v1/chat/completions", json=body, headers={"cache-control": header})
        assert response.status_code < 500, (header, response.text[:300])
