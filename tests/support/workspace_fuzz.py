"""A property-based fuzz of the workspace (Hypothesis): every route of the app but the API's and
the probes', with hostile ids in the path, query values, form fields and import files, signed in
as an admin (every route is reachable) and anonymously where the route is public. Any 5xx fails.

The routes are read from the app itself (Litestar's route list and each handler's signature), so
a route added later is fuzzed the day it is added; a form the fuzz cannot fill, or a path
parameter of a kind it does not know, fails instead of being skipped.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import msgspec
from hypothesis import HealthCheck, example, given, note, settings
from hypothesis import strategies as st
from litestar import Litestar
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType

from tests.support.fuzz_values import MAX_ID, SEED_FILES, import_files, text

NOT_FUZZED = re.compile(r"^/(v1|docs|schema|metrics|healthz|readyz)(/|$)")
"""The API and the probes: Schemathesis and the gateway's own fuzz cover /v1."""
RESERVED = frozenset({"request", "scope", "state", "headers", "cookies", "query", "socket"})
SIGNED_IN_ONLY_AS_VISITOR = frozenset({("POST", "/signout")})
"""Routes the signed-in fuzz leaves to the anonymous one (it would end its own session)."""
FORM_MEDIA = (RequestEncodingType.URL_ENCODED, RequestEncodingType.MULTI_PART)
NASTY_SEGMENTS = ["9" * 5000, "abc", "%00", "1%00", "\u0661", "-0", "+1", "0x10", "%2F", "1.5"]


@dataclass(frozen=True)
class Target:
    """One route and method, and what a request to it can carry."""

    method: str
    path: str
    ids: tuple[str, ...] = ()
    segments: tuple[str, ...] = ()
    """Path parameters that are not ids (a static file's path)."""
    query: tuple[str, ...] = ()
    form: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    public: bool = False

    @property
    def name(self) -> str:
        return f"{self.method} {self.path}"


class Unfillable(Exception):
    """The fuzz does not know how to fill part of a route: teach it (here), do not skip it."""


def _fields(kind: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(text fields, file fields) of a form type."""
    if isinstance(kind, type) and issubclass(kind, msgspec.Struct):
        return tuple(f.name for f in msgspec.structs.fields(kind)), ()
    if dataclasses.is_dataclass(kind):
        texts: list[str] = []
        files: list[str] = []
        for field in dataclasses.fields(kind):
            (files if field.type in (UploadFile, "UploadFile") else texts).append(field.name)
        return tuple(texts), tuple(files)
    raise Unfillable(f"a form of type {kind!r}")


def targets(app: Litestar) -> list[Target]:
    """Every fuzzed route of ``app``, from its route list."""
    found: dict[str, Target] = {}
    for route in app.routes:
        if NOT_FUZZED.search(route.path):
            continue
        for handler in getattr(route, "route_handlers", []):
            methods = sorted(set(handler.http_methods) & {"GET", "POST", "HEAD"})
            if not methods:
                continue
            dependencies = set(handler.resolve_dependencies())
            ids: list[str] = []
            segments: list[str] = []
            query: list[str] = []
            form: tuple[str, ...] = ()
            files: tuple[str, ...] = ()
            for name, field in handler.parsed_fn_signature.parameters.items():
                if name in RESERVED or name in dependencies:
                    continue
                if name == "data":
                    media = getattr(field.kwarg_definition, "media_type", None)
                    if media not in (
                        RequestEncodingType.URL_ENCODED,
                        RequestEncodingType.MULTI_PART,
                    ):
                        raise Unfillable(f"{route.path}: a body of media type {media}")
                    form, files = _fields(field.annotation)
                elif name in route.path_parameters:
                    kind = route.path_parameters[name].type
                    (ids if kind is int else segments).append(name)
                    if kind not in (int, str) and "path" not in route.path_parameters[name].full:
                        raise Unfillable(f"{route.path}: a path parameter of type {kind}")
                else:
                    query.append(name)
            for method in methods:
                target = Target(
                    method,
                    route.path,
                    tuple(ids),
                    tuple(segments),
                    tuple(query),
                    form,
                    files,
                    public=not handler.resolve_guards(),
                )
                found[target.name] = target
    return sorted(found.values(), key=lambda t: t.name)


def form_or_id_routes(app: Litestar) -> set[str]:
    """``METHOD path`` of every route that takes a form or an id (counted independently of
    ``targets``), the API's apart: what the fuzz must cover."""
    names = set()
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            takes_form = "data" in handler.parsed_fn_signature.parameters
            for method in set(handler.http_methods) - {"OPTIONS", "HEAD"}:
                if route.path.startswith("/v1"):
                    continue
                if takes_form or method == "POST" or re.search(r"\{\w+:int\}", route.path):
                    names.add(f"{method} {route.path}")
    return names


# --- strategies ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    path: str
    query: dict[str, str]
    form: dict[str, str]
    files: dict[str, bytes]
    raw_body: bytes | None
    htmx: bool
    token: str | None
    """None: the session's own CSRF token."""


def requests(
    target: Target, real_ids: Mapping[str, list[int]], never: frozenset[int]
) -> st.SearchStrategy[Request]:
    """Requests to ``target``: ids of ``real_ids`` (per path parameter) or hostile ones, but never
    one of ``never`` (the fuzzing admin's own user id: a password reset would sign it out)."""

    def id_segment(name: str) -> st.SearchStrategy[str]:
        real = real_ids.get(name, [])
        hostile = st.one_of(
            st.integers(min_value=-(2**70), max_value=2**70),
            st.sampled_from([0, MAX_ID, MAX_ID + 1, 2**63 - 1, 2**63, 10**30]),
        ).filter(lambda n: n not in never)
        choices = [hostile.map(str), st.sampled_from(NASTY_SEGMENTS)]
        if real:
            choices.insert(0, st.sampled_from(real).map(str))
        return st.one_of(*choices)

    segment = st.one_of(
        st.sampled_from(
            [
                "switchboard.css",
                "vendor/htmx-2.0.11.min.js",
                "%00",
                "a%00b",
                "../../../etc/passwd",
                "..%2f..%2fetc",
                "%ff",
                "x/%00/y",
            ]
        ),
        text().map(lambda value: quote(value, safe="/")),
    )
    parts = {name: id_segment(name) for name in target.ids}
    parts.update(dict.fromkeys(target.segments, segment))

    @st.composite
    def build(draw: Callable[..., Any]) -> Request:
        filled = {name: draw(strategy) for name, strategy in parts.items()}
        path = re.sub(r"\{(\w+):\w+\}", lambda m: filled[m.group(1)], target.path)
        query = draw(st.fixed_dictionaries({}, optional=dict.fromkeys(target.query, text())))
        query.update(draw(st.dictionaries(text(), text(), max_size=1)))  # an unknown one
        form = draw(st.fixed_dictionaries({}, optional=dict.fromkeys(target.form, text())))
        files = {name: draw(import_files()) for name in target.files}
        raw = draw(st.none() | st.binary(max_size=60)) if not target.files else None
        token = draw(st.sampled_from([None] * 9 + ["not-a-token"]))
        return Request(path, query, form, files, raw, draw(st.booleans()), token)

    return build()


SEED_IDS = [str(MAX_ID + 1), str(2**63), "9" * 5000, "-1"]
SEED_TEXT = ["a\x00b", str(10**30), "a\rb\r\nc"]


def seeds(target: Target, real_ids: Mapping[str, list[int]]) -> list[Request]:
    """The findings of issue 24, tried on every route before the random examples: ids beyond
    the columns, NUL and huge numbers in every text, a body that is not UTF-8, a CSRF token
    that is not ASCII, import files not UTF-8, deeply nested or dated out of range."""

    def request(ids: str | None = None, value: str | None = None, **changes: Any) -> Request:
        real = {name: str(real_ids.get(name, [1])[-1]) for name in target.ids}
        filled = {name: ids or real[name] for name in target.ids}
        filled.update(dict.fromkeys(target.segments, ids or "switchboard.css"))
        path = re.sub(r"\{(\w+):\w+\}", lambda m: filled[m.group(1)], target.path)
        texts = dict.fromkeys(target.form, value or "text")
        base = Request(
            path,
            dict.fromkeys(target.query, value or "q"),
            texts,
            dict.fromkeys(target.files, SEED_FILES[0]),
            None,
            False,
            None,
        )
        return dataclasses.replace(base, **changes)

    found = [request(ids=value) for value in SEED_IDS if target.ids]
    if target.segments:
        found += [request(ids=value) for value in ("%00", "a%00b", "%ff")]
    if target.query or target.form:
        found += [request(value=value) for value in SEED_TEXT]
    if target.method == "POST":
        found.append(request(token="é" * 128))
        if not target.files:
            found.append(request(form={}, raw_body=b"\xff\xfe=%%%&a=%00"))
    for body in SEED_FILES if target.files else []:
        found.append(request(files=dict.fromkeys(target.files, body)))
    return found


def send(client: httpx.Client, target: Target, request: Request, token: str) -> httpx.Response:
    # bytes, not str: a token may hold any character, and httpx sends bytes as they are
    headers = {b"x-csrftoken": (token if request.token is None else request.token).encode()}
    if request.htmx:
        headers[b"hx-request"] = b"true"
    if target.method in ("GET", "HEAD"):
        return client.request(target.method, request.path, params=request.query, headers=headers)
    if request.files:
        files = {
            name: ("conversations.json", body, "application/json")
            for name, body in request.files.items()
        }
        return client.post(
            request.path, params=request.query, data=request.form, files=files, headers=headers
        )
    if request.raw_body is not None and not request.form:
        headers[b"content-type"] = b"application/x-www-form-urlencoded"
        return client.post(request.path, content=request.raw_body, headers=headers)
    return client.post(request.path, params=request.query, data=request.form, headers=headers)


def fuzz(
    client: httpx.Client,
    target: Target,
    real_ids: Mapping[str, list[int]],
    never: frozenset[int],
    token: Callable[[], str],
    examples: int,
) -> None:
    """``examples`` requests to ``target``; any 5xx (or a stack trace in a page) fails."""

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=False,
        suppress_health_check=list(HealthCheck),
    )
    @given(request=requests(target, real_ids, never))
    def one(request: Request) -> None:
        note(f"{target.name}: {request!r}"[:3000])
        response = send(client, target, request, token())
        assert response.status_code < 500, (target.name, response.status_code, response.text[:800])
        assert "Traceback" not in response.text

    for seed in seeds(target, real_ids):
        one = example(request=seed)(one)
    one()
