"""Accessibility checked in the browser: axe-core (vendored in ``vendor/``, tests only) runs in
the page as it is, and serious or critical violations fail the test with a readable list.

The app's CSP allows no inline script, so ``page.add_script_tag`` (an inline ``<script>``) is
refused; ``page.evaluate`` runs the source through the DevTools protocol, which the page's CSP
does not govern, and axe itself needs no eval."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any, Literal

from playwright.sync_api import Page, ViewportSize

from tests.e2e.conftest import screenshot
from tests.e2e.support import DESKTOP, PHONE

AXE = Path(__file__).parent / "vendor" / "axe.min.js"
FAILING = frozenset({"serious", "critical"})
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]
RUN = """async (tags) => {
    const result = await axe.run(document, { runOnly: { type: "tag", values: tags } });
    return result.violations.map((v) => ({
        id: v.id, impact: v.impact, help: v.help,
        targets: v.nodes.map((n) => n.target.join(" ")).slice(0, 5),
    }));
}"""


@cache
def axe_source() -> str:
    return AXE.read_text(encoding="utf-8")


def violations(page: Page) -> list[dict[str, Any]]:
    """axe's violations in the page as it is now (all impacts)."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(axe_source() + "\n;true")
    found: list[dict[str, Any]] = page.evaluate(RUN, TAGS)
    return found


def describe(found: list[dict[str, Any]]) -> str:
    return "\n".join(
        f"- {v['id']} ({v['impact']}): {v['help']} at {', '.join(v['targets'])}" for v in found
    )


def assert_accessible(page: Page, where: str = "") -> None:
    """No serious or critical axe violation in the page (moderate and minor ones are allowed)."""
    bad = [v for v in violations(page) if v["impact"] in FAILING]
    assert not bad, f"axe found serious or critical violations on {where or page.url}:\n" + (
        describe(bad)
    )


Scheme = Literal["light", "dark"]
VARIANTS: list[tuple[str, ViewportSize, Scheme]] = [
    ("desktop", DESKTOP, "light"),
    ("desktop", DESKTOP, "dark"),
    ("phone", PHONE, "light"),
    ("phone", PHONE, "dark"),
]
LOOK = """() => {
    const body = getComputedStyle(document.body);
    return {
        background: body.backgroundColor, color: body.color,
        overflow: document.documentElement.scrollWidth - window.innerWidth,
        wide: [...document.querySelectorAll("body *")]
            .filter((e) => e.getBoundingClientRect().right > window.innerWidth)
            .slice(-3).map((e) => e.outerHTML.slice(0, 100)),
    };
}"""


def check_every_variant(page: Page, name: str) -> None:
    """The page as it is now, at desktop and phone width, light and dark: a screenshot of each
    (``test-artifacts/screenshots/NAME-WIDTH-SCHEME.png``), no serious or critical axe violation,
    nothing wider than a phone's screen, and a dark scheme that really is another one."""
    looks: dict[str, dict[str, Any]] = {}
    for width, viewport, scheme in VARIANTS:
        page.emulate_media(color_scheme=scheme)
        page.set_viewport_size(viewport)
        look: dict[str, Any] = page.evaluate(LOOK)
        where = f"{name} ({width}, {scheme})"
        assert look["overflow"] <= 0, (
            f"{where} is {look['overflow']} px wider than the screen: {look['wide']}"
        )
        looks[scheme] = look
        screenshot(page, f"{name}-{width}-{scheme}")
        assert_accessible(page, where)
    assert looks["dark"]["background"] != looks["light"]["background"], looks
    assert looks["dark"]["color"] != looks["light"]["color"], looks
    page.emulate_media(color_scheme="light")
    page.set_viewport_size(DESKTOP)
