"""The minimal chat page: type a message, get the model's answer (works without JavaScript).

The full workspace (accounts, history, streaming) replaces this page; the path to the model is
already the real one: the gateway service, in process.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import URLEncodedBody
from litestar.response import Template

from switchboard.gateway.errors import GatewayError
from switchboard.gateway.protocol import ChatCompletionRequest, UserMessage
from switchboard.gateway.service import Caller, GatewayService, ParsedRequest
from switchboard.settings import Settings


class AskForm(msgspec.Struct):
    message: str = ""


class _Answer(msgspec.Struct):
    choices: list[dict[str, Any]]


class PagesController(Controller):
    include_in_schema = False

    @get("/", name="home")
    async def home(self, settings: NamedDependency[Settings]) -> Template:
        return Template("home.html", context={"model": settings.default_model})

    @post("/ask", name="ask", status_code=200)
    async def ask(
        self,
        data: URLEncodedBody[AskForm],
        gateway: NamedDependency[GatewayService],
        settings: NamedDependency[Settings],
    ) -> Template:
        context: dict[str, Any] = {"model": settings.default_model, "message": data.message}
        text = data.message.strip()
        if not text:
            context["error"] = "Type a message first."
            return Template("home.html", context=context, status_code=400)
        request = ChatCompletionRequest(
            model=settings.default_model,
            messages=[UserMessage(content=text)],
            max_tokens=256,
        )
        parsed = ParsedRequest("chat", request, msgspec.to_builtins(request))
        caller = Caller(
            user_id=None, key_id=None, rpm=settings.default_rpm, tpm=settings.default_tpm,
            source="web",
        )  # fmt: skip
        try:
            completion = await gateway.complete(parsed, caller)
            answer = msgspec.json.decode(completion.body or b"{}", type=_Answer)
            context["answer"] = answer.choices[0]["message"]["content"]
        except GatewayError as exc:
            context["error"] = exc.message
            return Template("home.html", context=context, status_code=exc.status)
        return Template("home.html", context=context)
