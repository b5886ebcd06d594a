"""Export (Markdown, JSON) and import (ours, ChatGPT's, Open WebUI's) of conversations."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.params import FromPath, MultipartBody
from litestar.response import Redirect, Template

from switchboard.accounts.guards import requires_user
from switchboard.chat import import_formats, import_limits, transfer
from switchboard.chat.quotas import ChatQuotas
from switchboard.chat.views import TEMPLATE, conversation_of, page_context, user_of
from switchboard.gateway.service import GatewayService
from switchboard.settings import Settings
from switchboard.web.errors import error_page
from switchboard.web.htmx import htmx_of
from switchboard.web.rendering import page

MAX_REPORT_LINES = 20


@dataclass
class ImportForm:
    file: UploadFile


class ImportsExhausted(transfer.ImportError_):
    """Too many imports this hour (settings ``imports_per_hour``)."""

    status_code = 429

    def __init__(self, limit: int, wait: int) -> None:
        minutes = max(1, round(wait / 60))
        super().__init__(
            f"You have started {limit} imports within the hour, the most allowed: try again "
            f"in {minutes} minute{'s' * (minutes != 1)}."
        )


def _import_too_large(request: Request[Any, Any, Any], _: Exception) -> Response[Any]:
    """A request body over the import's limit (refused before it is read): the error page, with
    the import's own explanation."""
    return error_page(request, 413, import_limits.TOO_LARGE)


def _download(body: bytes | str, filename: str, media_type: str) -> Response[Any]:
    return Response(
        content=body,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


class ChatTransferController(Controller):
    path = "/chat"
    guards = [requires_user]
    include_in_schema = False

    @get("/{conversation_id:int}/export.md")
    async def export_markdown(
        self, request: Request[Any, Any, Any], conversation_id: FromPath[int]
    ) -> Response[Any]:
        _, conversation = await conversation_of(request, conversation_id)
        exported = await transfer.export_one(conversation)
        return _download(
            transfer.as_markdown(exported), f"conversation-{conversation.id}.md", "text/markdown"
        )

    @get("/{conversation_id:int}/export.json")
    async def export_json(
        self, request: Request[Any, Any, Any], conversation_id: FromPath[int]
    ) -> Response[Any]:
        _, conversation = await conversation_of(request, conversation_id)
        exported = await transfer.export_conversation(conversation)
        return _download(
            msgspec.json.encode(exported),
            f"conversation-{conversation.id}.json",
            "application/json",
        )

    @get("/export.json")
    async def export_everything(self, request: Request[Any, Any, Any]) -> Response[Any]:
        user = await user_of(request)
        exported = await transfer.export_all(int(user.id))
        return _download(msgspec.json.encode(exported), "conversations.json", "application/json")

    @post(
        "/import",
        status_code=303,
        request_max_body_size=import_limits.MAX_IMPORT_BYTES + import_limits.MULTIPART_SLACK,
        exception_handlers={413: _import_too_large},
    )
    async def import_json(
        self,
        request: Request[Any, Any, Any],
        data: MultipartBody[ImportForm],
        settings: NamedDependency[Settings],
        gateway: NamedDependency[GatewayService],
        quotas: NamedDependency[ChatQuotas],
    ) -> Template | Redirect:
        """htmx gets the report (or the refusal) in place; a plain form post goes back to the
        list, or to the page with the refusal."""
        user = await user_of(request)
        htmx = bool(htmx_of(request))
        headers: dict[str, str] = {}
        try:
            if wait := await quotas.import_wait(int(user.id)):
                headers["Retry-After"] = str(wait)
                raise ImportsExhausted(quotas.imports_per_hour, wait)
            # one byte more than allowed is enough to know the file is too large
            raw = await data.file.read(import_limits.MAX_IMPORT_BYTES + 1)
            parsed, report = import_formats.parse_import(raw)
        except transfer.ImportError_ as exc:
            refusal = {"import_error": str(exc)[:300]}
            if htmx:  # 200: htmx swaps no 4xx response, and this one is the answer to show
                return page(request, TEMPLATE, refusal, block="import_result", headers=headers)
            context = {**await page_context(user, None, gateway), **refusal}
            return page(request, TEMPLATE, context, status_code=exc.status_code, headers=headers)
        await transfer.import_all(int(user.id), parsed, max_tokens=settings.model_max_len)
        if not htmx:
            return Redirect("/chat", status_code=303)
        context = {
            "import_report": report,
            "report_lines": report.lines()[:MAX_REPORT_LINES],
            "source_name": import_formats.SOURCE_NAMES[report.source],
        }
        headers = {"HX-Trigger": "conversations-changed"}  # the list shows them
        return page(request, TEMPLATE, context, block="import_result", headers=headers)
