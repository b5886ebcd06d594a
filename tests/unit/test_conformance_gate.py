"""The conformance suites' own logic (tests/conformance): the gate, the parsing of the tools'
reports, and the thin proxy's changes to a request (tests/support/token_cap_proxy.py)."""

from __future__ import annotations

import json

import pytest

from tests.conformance.comparison import Comparison, check_table, file_table
from tests.conformance.tools import parse_compatcanary, parse_junit, parse_trustedrouter
from tests.support.token_cap_proxy import shaped_body

TOOL = "trustedrouter-provider-check"


def test_a_check_passing_on_vllm_and_failing_through_the_gateway_is_a_regression() -> None:
    compared = Comparison("tool", {"a": "pass", "b": "pass", "c": "fail"},
                          {"a": "pass", "b": "fail", "c": "pass"})  # fmt: skip
    assert compared.regressions() == ["b"]
    assert compared.counts()["only_gateway"] == 1


@pytest.mark.parametrize("through", ["warn", "skip", "missing"])
def test_warn_skip_or_missing_through_the_gateway_is_a_regression_too(through: str) -> None:
    gateway = {} if through == "missing" else {"a": through}
    assert Comparison("tool", {"a": "pass"}, gateway).regressions() == ["a"]


def test_an_expected_difference_passes_the_gate_only_with_its_expected_status() -> None:
    check = "chat.forwarded-fields"
    assert Comparison(TOOL, {check: "pass"}, {check: "warn"}).regressions() == []
    assert Comparison(TOOL, {check: "pass"}, {check: "fail"}).regressions() == [check]


def test_the_tables_name_a_regression_and_list_differing_tests() -> None:
    compared = Comparison("compatcanary", {"chat/x": "pass"}, {"chat/x": "fail"})
    assert "**regression**" in "\n".join(check_table(compared))
    sdk = Comparison("openai", {"tests.api_resources.test_models.T::t": "pass"}, {})
    table = "\n".join(file_table(sdk))
    assert "| `test_models.T` | 1 | 1 | 0 | 1 |" in table
    assert "`tests.api_resources.test_models.T::t` | ✅ pass | missing |" in table


def test_the_reports_of_the_three_tools_are_read() -> None:
    junit = """<testsuites><testsuite>
      <testcase classname="m.C" name="a"/>
      <testcase classname="m.C" name="b"><failure message="x"/></testcase>
      <testcase classname="m.C" name="c"><skipped/></testcase>
    </testsuite></testsuites>"""
    assert parse_junit(junit) == {"m.C::a": "pass", "m.C::b": "fail", "m.C::c": "skip"}
    checks = {"checks": [{"id": "chat.pong", "status": "FAIL"}, {"id": "x", "status": "pass"}]}
    assert parse_trustedrouter(json.dumps(checks)) == {"chat.pong": "fail", "x": "pass"}
    probes = {"results": [{"id": "chat.basic", "status": "pass"}]}
    assert parse_compatcanary(json.dumps(probes), "modern") == {"modern/chat.basic": "pass"}


def shaped(path: str, body: object, cap: int | None = 16, seed: int | None = None) -> object:
    return json.loads(shaped_body(path, json.dumps(body).encode(), cap, seed))


def test_the_proxy_caps_tokens_as_the_gateway_does() -> None:
    chat = "/v1/chat/completions"
    assert shaped(chat, {"max_tokens": 512})["max_tokens"] == 16  # type: ignore[index]
    assert shaped(chat, {"max_completion_tokens": 4}) == {"max_completion_tokens": 4}
    assert shaped(chat, {}) == {"max_tokens": 16}
    assert shaped("/v1/completions", {"max_tokens": None}) == {"max_tokens": 16}
    assert shaped("/v1/responses", {}) == {"max_output_tokens": 16}
    assert shaped(chat, {"max_tokens": "x"}) == {"max_tokens": "x"}  # vLLM judges it


def test_the_proxy_seeds_requests_that_name_no_seed_and_leaves_the_rest() -> None:
    assert shaped("/v1/chat/completions", {}, None, 0) == {"seed": 0}
    assert shaped("/v1/chat/completions", {"seed": 5}, None, 0) == {"seed": 5}
    assert shaped("/v1/models", {"a": 1}, 16, 0) == {"a": 1}
    assert shaped_body("/v1/chat/completions", b"not json", 16, 0) == b"not json"
    assert shaped_body("/v1/chat/completions", b"[1]", 16, 0) == b"[1]"
