"""The values the workspace fuzz (workspace_fuzz.py) sends: hostile text, dates and numbers, and
import files (our export, ChatGPT's, Open WebUI's, any JSON, deep nesting, not JSON at all)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from hypothesis import strategies as st

MAX_ID = 2**31 - 1
NASTY_TEXT = [
    "\x00",
    "a\x00b",
    "\r",
    "\r\n",
    "a\rb",
    "\n\n",
    "%00",
    "%ff",
    "9" * 5000,
    str(MAX_ID),
    str(MAX_ID + 1),
    str(2**63),
    str(10**30),
    "-1",
    "0",
    "1e400",
    "-1e400",
    "nan",
    "inf",
    "-0",
    "²",
    "\u0661\u0662",
    " 7 ",
    "",
    " ",
    "<script>alert(1)</script>",
    "'\"",
    "../../etc/passwd",
    "\ufeff",
    "\u2028",
    "#1",
    f"#{MAX_ID + 1}",
    "x" * 3000,
    "user",
    "key",
    "admin",
    "member",
    "day",
    "model",
    "fake-model",
]
ZONES = [None, dt.UTC, dt.timezone(dt.timedelta(hours=14)), dt.timezone(dt.timedelta(hours=-14))]


def text() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(NASTY_TEXT),
        st.text(st.characters(codec="utf-8"), max_size=30),
        st.integers().map(str),
        st.floats().map(str),
    )


def dates() -> st.SearchStrategy[Any]:
    moments = st.datetimes(
        min_value=dt.datetime(1, 1, 2),
        max_value=dt.datetime(9999, 12, 30),
        timezones=st.sampled_from(ZONES),
    )
    return st.one_of(moments.map(dt.datetime.isoformat), st.integers(), st.floats(), text())


def _numbers() -> st.SearchStrategy[Any]:
    return st.one_of(st.integers(), st.floats(allow_nan=False, allow_infinity=False), text())


def import_files() -> st.SearchStrategy[bytes]:
    """Our export, ChatGPT's, Open WebUI's (each with hostile values), any JSON, deep nesting,
    and bytes that are not JSON (or not UTF-8)."""
    json_values = st.recursive(
        st.none() | st.booleans() | _numbers(),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text(), inner, max_size=3),
        max_leaves=8,
    )
    message = st.fixed_dictionaries(
        {"role": st.sampled_from(["user", "assistant", "system", "tool", ""]), "content": text()},
        optional={"created_at": dates(), "status": text()},
    )
    ours = st.fixed_dictionaries(
        {
            "format": st.just("switchboard.conversations"),
            "conversations": st.lists(
                st.fixed_dictionaries(
                    {"title": text(), "messages": st.lists(message, max_size=3)},
                    optional={
                        "created_at": dates(),
                        "updated_at": dates(),
                        "temperature": _numbers(),
                        "max_tokens": _numbers(),
                        "model": text(),
                        "system_prompt": text(),
                    },
                ),
                max_size=3,
            ),
        }
    )
    node = st.fixed_dictionaries(
        {},
        optional={
            "parent": text(),
            "children": st.lists(text(), max_size=2),
            "message": st.fixed_dictionaries(
                {},
                optional={
                    "author": st.fixed_dictionaries({"role": text()}),
                    "content": st.fixed_dictionaries(
                        {}, optional={"parts": st.lists(json_values, max_size=2)}
                    ),
                    "create_time": dates(),
                },
            ),
        },
    )
    chatgpt = st.lists(
        st.fixed_dictionaries(
            {"title": text(), "mapping": st.dictionaries(text(), node, max_size=3)},
            optional={"create_time": dates(), "update_time": dates(), "current_node": text()},
        ),
        max_size=2,
    )
    openwebui = st.lists(
        st.fixed_dictionaries(
            {
                "title": text(),
                "chat": st.fixed_dictionaries(
                    {
                        "messages": st.lists(
                            st.fixed_dictionaries(
                                {"role": text(), "content": text()}, optional={"timestamp": dates()}
                            ),
                            max_size=3,
                        )
                    }
                ),
            },
            optional={"updated_at": dates()},
        ),
        max_size=2,
    )
    as_json = st.one_of(ours, chatgpt, openwebui, json_values).map(
        lambda value: json.dumps(value, ensure_ascii=False).encode()
    )
    deep = st.integers(300, 3000).map(lambda n: b'{"a":' * n + b"1" + b"}" * n)
    return st.one_of(as_json, deep, st.binary(max_size=80))


SEED_FILES = [
    b'{"format": "switchboard.conversations", "conversations": [{"title": "\xff"}]}',
    b"[" * 5000 + b"]" * 5000,
    json.dumps(
        {
            "format": "switchboard.conversations",
            "conversations": [
                {
                    "title": "old",
                    "updated_at": "0001-01-01T00:00:00+14:00",
                    "messages": [
                        {"role": "user", "content": "hi", "created_at": "9999-12-31T23:59:59-14:00"}
                    ],
                }
            ],
        }
    ).encode(),
    json.dumps(
        [
            {
                "title": "x",
                "create_time": -62135596800,
                "mapping": {
                    "a": {
                        "message": {
                            "author": {"role": "user"},
                            "content": {"parts": ["hi"]},
                            "create_time": 1e300,
                        }
                    }
                },
            }
        ]
    ).encode(),
]
