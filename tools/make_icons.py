"""Draw the app's icons into templates/static/icons/ (run once; the files are committed).

One design, a board of jacks with a patch cord, drawn twice from the same numbers: as SVG (the
favicon modern browsers pick) and with Pillow as PNGs (the manifest's 192 and 512 px icons, the
Apple touch icon) and ``favicon.ico`` (16, 32 and 48 px, for browsers and tools that ask for it).

    .venv/bin/python tools/make_icons.py
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

OUT = Path(__file__).resolve().parents[1] / "templates" / "static" / "icons"
BACKGROUND = "#2f5bd3"  # the workspace's accent (switchboard.css)
FOREGROUND = "#ffffff"
SIZE = 64  # the design's grid; every number below is on it
JACKS = [(x, y) for y in (18, 32, 46) for x in (18, 32, 46)]
CORD = ((18, 18), (46, 46))
RADIUS, JACK, STROKE = 14, 5, 6


def svg() -> str:
    jacks = "".join(f'<circle cx="{x}" cy="{y}" r="{JACK}"/>' for x, y in JACKS)
    (x1, y1), (x2, y2) = CORD
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {SIZE} {SIZE}">'
        f'<rect width="{SIZE}" height="{SIZE}" rx="{RADIUS}" fill="{BACKGROUND}"/>'
        f'<g fill="{FOREGROUND}">{jacks}</g>'
        f'<path d="M{x1} {y1}L{x2} {y2}" stroke="{FOREGROUND}" stroke-width="{STROKE}" '
        'stroke-linecap="round"/></svg>\n'
    )


def png(pixels: int, *, maskable: bool = False) -> Image.Image:
    """The icon at ``pixels`` (drawn 4x larger, then scaled down: smooth edges). ``maskable``:
    a full square background (the platform cuts its own shape) and the board in the safe zone."""
    big = pixels * 4
    scale = big / SIZE
    image = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    if maskable:
        draw.rectangle((0, 0, big, big), fill=BACKGROUND)
        scale *= 0.8  # the board within the central 80 %
    else:
        draw.rounded_rectangle((0, 0, big - 1, big - 1), radius=RADIUS * scale, fill=BACKGROUND)
    offset = (big - SIZE * scale) / 2

    def at(x: float, y: float) -> tuple[float, float]:
        return offset + x * scale, offset + y * scale

    (x1, y1), (x2, y2) = CORD
    draw.line((*at(x1, y1), *at(x2, y2)), fill=FOREGROUND, width=round(STROKE * scale))
    for x, y in [*JACKS, *CORD]:
        r = (JACK if (x, y) in JACKS else STROKE / 2) * scale
        cx, cy = at(x, y)
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=FOREGROUND)
    return image.resize((pixels, pixels), Image.Resampling.LANCZOS)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "icon.svg").write_text(svg())
    png(192).save(OUT / "icon-192.png", optimize=True)
    png(512).save(OUT / "icon-512.png", optimize=True)
    png(512, maskable=True).save(OUT / "icon-maskable-512.png", optimize=True)
    png(180, maskable=True).save(OUT / "apple-touch-icon.png", optimize=True)
    png(48).save(OUT / "favicon.ico", sizes=[(16, 16), (32, 32), (48, 48)])


if __name__ == "__main__":
    main()
