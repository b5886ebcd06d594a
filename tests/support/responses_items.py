"""Responses input items as clients write them: one of each item type (and content part) the
gateway publishes (shared by the unit test against the fake model server and the live one)."""

from __future__ import annotations

from typing import Any

TEXT: dict[str, Any] = {
    "type": "output_text", "text": "It is sunny.", "annotations": [], "logprobs": None
}  # fmt: skip
CONVERSATION: list[dict[str, Any]] = [
    {"role": "developer", "content": "Answer briefly."},
    {"type": "message", "role": "system", "content": [{"type": "input_text", "text": "Be kind."}]},
    {"role": "user", "content": "What is the weather?", "type": "message"},
    {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "Look."}],
     "content": [{"type": "reasoning_text", "text": "I should call the tool."}],
     "encrypted_content": None, "status": "completed"},
    {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "weather",
     "arguments": '{"city": "Paris"}', "status": "completed", "namespace": None, "async": None,
     "caller": None},  # as vLLM writes it in a response's output
    {"type": "function_call", "call_id": "call_2", "name": "clock", "arguments": "{}",
     "caller": {"type": "direct"}},
    {"type": "function_call_output", "call_id": "call_2", "output": "noon", "name": "clock",
     "caller": {"type": "program", "caller_id": "p_1"}},
    {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
    {"type": "function_call_output", "call_id": "call_1", "id": None, "status": None,
     "output": [{"type": "input_text", "text": "sunny"}]},
    {"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
     "phase": "final_answer", "content": [
         TEXT,
         {"type": "output_text", "text": "See the source.", "logprobs": [
             {"token": "See", "bytes": [83, 101, 101], "logprob": -0.5, "top_logprobs": [
                 {"token": "See", "bytes": [83, 101, 101], "logprob": -0.5}]}],
          "annotations": [
             {"type": "url_citation", "url": "https://example.org", "title": "Weather",
              "start_index": 0, "end_index": 3},
             {"type": "file_citation", "file_id": "file_1", "filename": "a.txt", "index": 1},
             {"type": "container_file_citation", "container_id": "c", "file_id": "file_1",
              "filename": "a.txt", "start_index": 0, "end_index": 1},
             {"type": "file_path", "file_id": "file_1", "index": 2}]}]},
    {"role": "assistant", "content": "Anything else?"},
    {"role": "user", "content": [{"type": "input_text", "text": "No, thanks."}],
     "status": "completed"},
]  # fmt: skip
"""One of each item type (and content part) the gateway publishes, as clients write them."""
