"""Schemathesis hooks for the contract test (loaded through ``SCHEMATHESIS_HOOKS``).

Generated requests leave out the tool-calling fields: what vLLM does with ``tools`` depends on
the model and on the server's tool parser (``--enable-auto-tool-choice``), which the 135M CPU
test model does not have, so vLLM refuses schema-valid tool requests with a 400. The gateway's
handling of those fields (validation, relaying, streamed tool-call deltas) has tests of its own.
Schemathesis revalidates a changed case against the schema, so a case stays positive or
negative as it really is.
"""

from __future__ import annotations

from typing import Any

import schemathesis

MODEL_DEPENDENT = ("tools", "tool_choice", "parallel_tool_calls")


@schemathesis.hook
def map_body(context: Any, body: Any) -> Any:
    if isinstance(body, dict):
        return {key: value for key, value in body.items() if key not in MODEL_DEPENDENT}
    return body
