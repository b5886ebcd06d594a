"""The workspace over HTTP (issue 13, items 1-3 and 8): Markdown rendered on the server while an
answer streams, at a bounded rate, ending with the stored render, the message actions and the
title; highlighted code; the composer's model picker and parameters; errors in place (model down,
rate limited); the history grouped by date, pinned, archived, searched with snippets."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from switchboard.accounts.services import create_user
from switchboard.chat import streaming
from switchboard.chat.markdown import render_markdown
from switchboard.chat.tables import Conversation
from tests.conftest import REPO_ROOT, WebFactory
from tests.support.fake_upstream import FakeUpstream
from tests.support.live import LiveServer
from tests.support.markdown_upstream import MarkdownUpstream
from tests.support.web_session import WebSession
from tests.unit.test_security_headers import inline_code

CODE_ANSWER = (
    "Here is the function you asked for:\n\n```python\ndef add(a, b):\n    return a + b\n```\n\n"
    "It adds **two** numbers, and that is all it does for now, really."
)


@pytest.fixture
def fake_upstream() -> FakeUpstream:
    return MarkdownUpstream(models=("fake-model", "other-model"))


@pytest.fixture
def ada(live_fake: LiveServer, web: WebFactory) -> WebSession:
    live_fake.run(create_user("ada", password="ada-password"))  # pragma: allowlist secret
    session = web(live_fake.url)
    assert session.sign_in("ada", "ada-password").status_code == 303
    return session


def ask(session: WebSession, conversation: int, text: str, **fields: str) -> str:
    """Send as htmx does; the path of the reply's stream."""
    sent = session.post(f"/chat/{conversation}/messages", {"content": text, **fields}, htmx=True)
    assert sent.status_code == 200, sent.text
    found = re.search(r'sse-connect="([^"]+/stream)"', sent.text)
    assert found is not None, sent.text
    return found.group(1)


def message_item(html: str, message_id: str) -> str:
    found = re.search(rf'<li class="message[^"]*" id="message-{message_id}">.*?\n</li>', html, re.S)
    assert found is not None, html
    return found.group(0)


# --- item 1: streaming that reads well --------------------------------------------------------


def test_an_answer_streams_as_rendered_markdown_at_a_bounded_rate_and_ends_as_stored(
    ada: WebSession, fake_upstream: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_upstream.chunk_delay = 0.02  # ~35 chunks over ~0.7 s
    monkeypatch.setattr(streaming, "RENDER_SECONDS", 0.2)
    conversation = ada.new_conversation()
    stream = ask(ada, conversation, CODE_ANSWER)
    events = ada.stream_events(stream)

    chunks = len(CODE_ANSWER.split(" "))
    partials = [data for name, data in events if name == "partial"]
    assert 2 <= len(partials) < chunks / 3  # re-rendered now and then, not once per token
    assert all("```" not in p for p in partials)  # never raw Markdown, even mid-fence
    assert any('<span class="hl-k">def</span>' in p for p in partials)  # highlighted already
    name, done = events[-1]
    assert name == "done"
    message_id = stream.split("/")[-2]
    page = ada.get(f"/chat/{conversation}").text
    assert message_item(done, message_id) == message_item(page, message_id)  # the stored render
    assert "<strong>two</strong>" in done
    assert [inline_code(html) for html in [*partials, done]] == [[]] * (len(partials) + 1)
    # what changes when the answer ends comes with it: the actions and the new title
    assert 'id="message-actions"' in done
    assert ">Regenerate</button>" in done
    assert "Edit last message" in done
    title = re.search(r'<input id="title"[^>]*>', done)
    assert title is not None
    assert 'hx-swap-oob="true"' in title.group(0)
    assert 'value="Here is the function you asked for:' in title.group(0)


def test_code_is_highlighted_with_classes_and_themed_light_and_dark() -> None:
    html = render_markdown("```python\nimport os\n```\n\n```nosuchlanguage\n<b>x</b>\n```")
    assert '<span class="hl-kn">import</span>' in html
    assert "&lt;b&gt;x&lt;/b&gt;" in html  # unknown language: plain, still escaped
    assert html.count("data-copy-code") == 2  # a copy button on each code block
    assert "style=" not in html
    css = (REPO_ROOT / "templates/static/highlight.css").read_text()
    light, dark = css.split("@media (prefers-color-scheme: dark)")
    assert ".markdown .hl-kn" in light
    assert ".markdown .hl-kn" in dark
    assert 'href="/static/highlight.css"' in (REPO_ROOT / "templates/base.html").read_text()


def test_finished_messages_have_copy_buttons(ada: WebSession) -> None:
    conversation = ada.new_conversation()
    assert ada.post(f"/chat/{conversation}/messages", {"content": "copy me"}).status_code == 303
    page = ada.get(f"/chat/{conversation}").text
    assert page.count('class="copy message-copy"') == 2  # the question and the answer


# --- item 2: the composer ---------------------------------------------------------------------


def test_the_composer_picks_from_the_live_models_and_shows_the_parameters(
    ada: WebSession, fake_upstream: FakeUpstream
) -> None:
    conversation = ada.new_conversation()
    page = ada.get(f"/chat/{conversation}").text
    picker = re.search(r'<select id="composer-model" name="model".*?</select>', page, re.S)
    assert picker is not None
    assert '<option value="other-model">other-model</option>' in picker.group(0)
    assert '<option value="fake-model" selected>fake-model</option>' in picker.group(0)
    assert "Temperature 0.7" in page
    assert "Max tokens 512" in page
    assert "No system prompt" in page

    ask(ada, conversation, "hello", model="other-model")
    assert (
        ada.get(f"/chat/{conversation}").text.count('<option value="other-model" selected>') == 2
    )  # the composer and the settings form
    # the reply streams with the model chosen
    ada.stream_events(f"/chat/{conversation}/messages/{_last_message(ada, conversation)}/stream")
    assert fake_upstream.requests[-1]["model"] == "other-model"

    refused = ada.post(
        f"/chat/{conversation}/messages", {"content": "hi", "model": "gpt-x"}, htmx=True
    )
    assert refused.status_code == 400
    assert "Unknown model" in refused.text
    assert len(fake_upstream.requests) == 1


def _last_message(session: WebSession, conversation: int) -> str:
    ids: list[str] = re.findall(r'id="message-(\d+)"', session.get(f"/chat/{conversation}").text)
    return ids[-1]


def test_the_page_documents_the_keyboard_shortcuts() -> None:
    page = (REPO_ROOT / "templates/chat/page.html").read_text()
    macros = (REPO_ROOT / "templates/chat/_macros.html").read_text()
    assert 'aria-keyshortcuts="Control+K Meta+K"' in page
    assert 'aria-keyshortcuts="Escape"' in macros


# --- item 8: errors in place ------------------------------------------------------------------


def test_model_down_shows_a_banner_with_a_retry_that_works(
    ada: WebSession, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.healthy = False
    conversation = ada.new_conversation()
    events = ada.stream_events(ask(ada, conversation, "are you there"))
    name, done = events[-1]
    assert name == "done"
    assert 'class="banner error-banner" role="alert"' in done
    assert "The model is unavailable right now." in done
    assert f'hx-post="/chat/{conversation}/regenerate"' in done
    assert ">Retry</button>" in done

    fake_upstream.healthy = True
    retried = ada.post(f"/chat/{conversation}/regenerate", htmx=True)
    assert retried.status_code == 200
    stream = re.search(r'sse-connect="([^"]+/stream)"', retried.text)
    assert stream is not None
    name, done = ada.stream_events(stream.group(1))[-1]
    assert 'class="message assistant complete"' in done
    assert "error-banner" not in ada.get(f"/chat/{conversation}").text


def test_rate_limited_shows_when_the_limit_resets(
    live_fake: LiveServer, web: WebFactory, fake_upstream: FakeUpstream
) -> None:
    live_fake.run(create_user("rita", password="rita-password", rpm=1))  # pragma: allowlist secret
    rita = web(live_fake.url)
    assert rita.sign_in("rita", "rita-password").status_code == 303
    conversation = rita.new_conversation()
    rita.stream_events(ask(rita, conversation, "first"))
    _, done = rita.stream_events(ask(rita, conversation, "second"))[-1]
    assert 'class="banner limit-banner" role="alert"' in done
    assert "Rate limit reached" in done
    resets = re.search(r"It resets in (\d+ s|1 min) \(at <time datetime=\"([^\"]+)\">", done)
    assert resets is not None, done
    at = dt.datetime.fromisoformat(resets.group(2))
    assert dt.timedelta(0) < at - dt.datetime.now(dt.UTC) <= dt.timedelta(seconds=61)
    assert ">Try again</button>" in done
    assert "It resets in" in rita.get(f"/chat/{conversation}").text  # kept for a reload
    assert len(fake_upstream.requests) == 1


# --- item 3: history --------------------------------------------------------------------------


LISTED = re.compile(r'<h2>([^<]+)</h2>|<a href="/chat/\d+"[^>]*>([^<]*)</a>')


def titles_and_headings(html: str) -> list[str]:
    """The sidebar's group headings and titles, in order."""
    return [heading or title for heading, title in LISTED.findall(html)]


async def _dated(conversation: int, title: str, days_ago: int) -> None:
    when = dt.datetime.now(dt.UTC) - dt.timedelta(days=days_ago)
    await Conversation.update({Conversation.title: title, Conversation.updated_at: when}).where(
        Conversation.id == conversation
    )


def test_the_list_groups_by_date_pins_and_archives(ada: WebSession, live_fake: LiveServer) -> None:
    ids = {}
    for title, days in (("old one", 30), ("last week", 3), ("yesterday", 1), ("fresh", 0)):
        ids[title] = ada.new_conversation()
        live_fake.run(_dated(ids[title], title, days))
    listed = titles_and_headings(ada.get("/chat/list", htmx=True).text)
    assert listed == [
        "Today",
        "fresh",
        "Yesterday",
        "yesterday",
        "Previous 7 days",
        "last week",
        "Older",
        "old one",
    ]

    assert ada.post(f"/chat/{ids['old one']}/pin").status_code == 303
    assert ada.post(f"/chat/{ids['fresh']}/archive").status_code == 303
    listed = titles_and_headings(ada.get("/chat/list", htmx=True).text)
    assert listed == ["Pinned", "old one", "Yesterday", "yesterday", "Previous 7 days", "last week"]
    found = ada.get("/chat/list?q=fresh", htmx=True).text  # archived: search still finds it
    assert titles_and_headings(found) == ["Today", "fresh"]
    assert '<span class="badge">Archived</span>' in found
    page = ada.get(f"/chat/{ids['fresh']}").text
    assert ">Unarchive</button>" in page
    assert ada.post(f"/chat/{ids['fresh']}/archive").status_code == 303  # back in the list
    assert "fresh" in titles_and_headings(ada.get("/chat/list", htmx=True).text)


def test_a_group_continued_on_the_next_page_has_no_second_heading(ada: WebSession) -> None:
    for _ in range(25):
        ada.new_conversation()
    first = titles_and_headings(ada.get("/chat/list", htmx=True).text)
    second = titles_and_headings(ada.get("/chat/list?page_number=1", htmx=True).text)
    assert first[0] == "Today"
    assert first.count("Today") == 1
    assert "Today" not in second
    assert len(second) == 5


def test_search_results_show_the_matching_passage(ada: WebSession) -> None:
    conversation = ada.new_conversation()
    long_text = ("lorem ipsum " * 10) + "the secret <b>Needle</b> is here " + ("dolor sit " * 10)
    assert ada.post(f"/chat/{conversation}/messages", {"content": long_text}).status_code == 303
    found = ada.get("/chat/list?q=needle", htmx=True).text
    snippet = re.search(r'<p class="snippet">(.*?)</p>', found, re.S)
    assert snippet is not None, found
    assert "<mark>Needle</mark>" in snippet.group(1)
    assert "&lt;b&gt;" in snippet.group(1)  # the message's text, escaped
    assert snippet.group(1).startswith("…")  # cut around the match
    assert len(snippet.group(1)) < 200
