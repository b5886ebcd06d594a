"""Markdown to safe HTML: markdown-it-py renders, Pygments highlights fenced code with CSS classes
(``hl-*``; the light and dark themes are in static/highlight.css), nh3 sanitises (no raw HTML
survives, only class attributes on code and spans)."""

from __future__ import annotations

import nh3
from markdown_it import MarkdownIt
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexer import Lexer
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound

CLASS_PREFIX = "hl-"
MAX_HIGHLIGHT_CHARS = 200_000
"""A longer code block is shown plain (highlighting is linear, but not free)."""
_formatter = HtmlFormatter(nowrap=True, classprefix=CLASS_PREFIX)
_ALLOWED = {
    "p",
    "br",
    "strong",
    "em",
    "code",
    "pre",
    "blockquote",
    "ul",
    "ol",
    "li",
    "a",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "del",
    "span",
}


def _lexer(language: str) -> Lexer | None:
    try:
        return get_lexer_by_name(language, stripnl=False, ensurenl=False)
    except ClassNotFound:
        return None


def _highlight(code: str, language: str, _attrs: str) -> str:
    """markdown-it's highlight hook: the inside of ``<code>`` ("" keeps its own escaping)."""
    lexer = _lexer(language.strip().split(" ")[0]) if language.strip() else None
    if lexer is None or len(code) > MAX_HIGHLIGHT_CHARS:
        return ""
    return str(highlight(code, lexer, _formatter))


_markdown = MarkdownIt(
    "commonmark", {"html": False, "linkify": False, "highlight": _highlight}
).enable("table")


COPY_BUTTON = '<button type="button" class="copy" data-copy-code>Copy</button>'


def render_markdown(text: str) -> str:
    """Safe HTML; each code block comes with a copy button (static/switchboard.js copies)."""
    html = _markdown.render(text)
    clean = nh3.clean(
        html,
        tags=_ALLOWED,
        attributes={"a": {"href", "title"}, "code": {"class"}, "span": {"class"}},
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )
    # After sanitising, a "<pre>" can only be markdown-it's own (any other is escaped text).
    return clean.replace("<pre>", f'<div class="code-block">{COPY_BUTTON}<pre>').replace(
        "</pre>", "</pre></div>"
    )


class StreamingMarkdown:
    """An answer that grows, as safe HTML, rendered incrementally: the top-level blocks the
    text has closed (every one but the last: in CommonMark a later line never reopens a closed
    block) are rendered once and kept; each call parses and renders only the last one. The
    finished answer is rendered whole (``render_markdown``), which also settles what only the
    whole text decides (a link to a reference defined further down)."""

    def __init__(self) -> None:
        self._closed_lines = 0
        self._closed_html = ""

    def render(self, text: str) -> str:
        """``text``: the answer so far (each call's text extends the previous one's)."""
        lines = text.split("\n")
        rest = "\n".join(lines[self._closed_lines :])
        starts = [t.map[0] for t in _markdown.parse(rest) if t.level == 0 and t.map is not None]
        last = starts[-1] if starts else 0
        if last > 0:  # blocks before the last one are closed: render them once
            closed = lines[self._closed_lines : self._closed_lines + last]
            self._closed_html += render_markdown("\n".join(closed))
            self._closed_lines += last
            rest = "\n".join(lines[self._closed_lines :])
        return self._closed_html + render_markdown(rest)
