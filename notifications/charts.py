"""Charts drawn on the server: one chart model, an SVG and a PNG of it (no script, no CDN).

A COPIL puts these on a slide, so each one is readable without colour: every series has its
own pattern (plain, hatched, dotted) as well as its shade, the legend repeats it, and every bar
carries its figure as text. What the charts show is computed in `flows.usecases.charts`; this
module only draws: the SVG and the PNG are drawn from the same list of shapes (`layout`), so
they show the same, and the web pages, the COPIL dossier (PDF) and the J-3 digest's attachment
all use them. The PNG is written with the DejaVu Sans font shipped in `notifications/fonts/`.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from notifications.fr import format_eur

WIDTH = 640
FONT = "DejaVu Sans, Arial, sans-serif"
FONT_FILE = Path(__file__).parent / "fonts" / "DejaVuSans.ttf"
INK = "#1e1e1e"
GRID = "#c8c8c8"


@dataclass(frozen=True)
class Series:
    label: str
    shade: str  # fill colour of the pattern's background
    pattern: str  # "plain", "hatch", "dots"


LABEL = Series("", "#ffffff", "plain")  # the white label behind a figure inside a bar
# Three series at most per chart; the patterns tell them apart in black and white.
SERIES_STYLE = (("#000091", "plain"), ("#6a6af4", "hatch"), ("#ffffff", "dots"))


@dataclass(frozen=True)
class Chart:
    """A bar chart: one group of bars per category, one bar per series (or stacked)."""

    slug: str
    title: str
    categories: list[str]
    series: list[Series]
    values: list[list[Decimal]]  # values[category][series]
    money: bool = True  # amounts in euros (else counts)
    stacked: bool = False
    note: str = ""

    def text(self, value: Decimal) -> str:
        return format_eur(value) if self.money else f"{int(value)}"

    @property
    def empty(self) -> bool:
        return not any(v for row in self.values for v in row)


def series_of(*labels: str) -> list[Series]:
    return [Series(label, *SERIES_STYLE[i]) for i, label in enumerate(labels)]


# ---------------------------------------------------------------------------------------------
# Layout: the shapes both renderers draw


@dataclass(frozen=True)
class Box:
    x: float
    y: float
    w: float
    h: float
    series: int  # index of the series (its pattern), -1: a white label


@dataclass(frozen=True)
class Text:
    x: float
    y: float
    text: str
    anchor: str = "start"  # start, middle, end
    size: int = 12
    bold: bool = False


@dataclass
class Drawing:
    width: int
    height: int
    boxes: list[Box] = field(default_factory=list)
    texts: list[Text] = field(default_factory=list)
    lines: list[tuple[float, float, float, float]] = field(default_factory=list)


def layout(chart: Chart) -> Drawing:
    return _columns(chart) if chart.stacked else _bars(chart)


def _legend(chart: Chart, d: Drawing, y: float) -> None:
    x = 10.0
    for i, s in enumerate(chart.series):
        d.boxes.append(Box(x, y - 11, 22, 14, i))
        d.texts.append(Text(x + 28, y, s.label))
        x += 40 + 7.5 * len(s.label)


def _bars(chart: Chart) -> Drawing:
    """Horizontal grouped bars: the category above its bars, the figure after each bar."""
    bar, gap, label_h = 16, 14, 18
    group = label_h + bar * len(chart.series) + gap
    top = 56
    height = int(top + group * max(len(chart.categories), 1) + 30)
    d = Drawing(WIDTH, height)
    d.texts.append(Text(10, 22, chart.title, size=15, bold=True))
    _legend(chart, d, 44)
    peak = max((v for row in chart.values for v in row), default=Decimal(0))
    left, span = 10.0, WIDTH - 10 - 150
    if not chart.categories or peak == 0:
        d.texts.append(Text(10, top + 20, "Aucun montant pour cette année."))
        return d
    for c, name in enumerate(chart.categories):
        y = top + c * group
        d.texts.append(Text(left, y + 13, name, bold=True))
        for s, value in enumerate(chart.values[c]):
            w = float(value / peak) * span if value > 0 else 0.0
            by = y + label_h + s * bar
            d.boxes.append(Box(left, by, max(w, 1.0), bar - 3, s))
            d.texts.append(
                Text(
                    left + w + 6, by + 11, f"{chart.series[s].label} : {chart.text(value)}", size=11
                )
            )
    if chart.note:
        d.texts.append(Text(10, height - 10, chart.note, size=11))
    return d


def _columns(chart: Chart) -> Drawing:
    """Stacked columns (one per month): each part's count inside it, the total on top."""
    top, base, left = 60, 260, 40.0
    height = base + 40
    d = Drawing(WIDTH, height)
    d.texts.append(Text(10, 22, chart.title, size=15, bold=True))
    _legend(chart, d, 44)
    totals = [sum(row, Decimal(0)) for row in chart.values]
    peak = max(totals, default=Decimal(0)) or Decimal(1)
    slot = (WIDTH - left - 10) / max(len(chart.categories), 1)
    d.lines.append((left, base, WIDTH - 10, base))
    for c, name in enumerate(chart.categories):
        x = left + c * slot + 6
        w = slot - 12
        y = float(base)
        for s, value in enumerate(chart.values[c]):
            if value <= 0:
                continue
            h = float(value / peak) * (base - top - 20)
            y -= h
            d.boxes.append(Box(x, y, w, h, s))
            if h >= 18 and sum(1 for v in chart.values[c] if v > 0) > 1:
                # A part's own count, on a white label so the pattern does not hide it.
                d.boxes.append(Box(x + w / 2 - 10, y + h / 2 - 8, 20, 16, -1))
                d.texts.append(Text(x + w / 2, y + h / 2 + 4, chart.text(value), "middle", 11))
        if totals[c]:
            d.texts.append(Text(x + w / 2, y - 4, chart.text(totals[c]), "middle", 11, True))
        d.texts.append(Text(x + w / 2, base + 16, name, "middle", 11))
    if chart.empty:
        d.texts.append(Text(left, base - 40, "Aucun jalon dans l'année."))
    return d


# ---------------------------------------------------------------------------------------------
# SVG


def _pattern_defs(chart: Chart) -> str:
    parts = []
    for i, s in enumerate(chart.series):
        pid = f"{chart.slug}-motif-{i}"
        if s.pattern == "plain":
            body = f'<rect width="8" height="8" fill="{s.shade}"/>'
        elif s.pattern == "hatch":
            body = (
                f'<rect width="8" height="8" fill="{s.shade}"/>'
                f'<path d="M-2,2 l4,-4 M0,8 l8,-8 M6,10 l4,-4" stroke="{INK}" stroke-width="1.5"/>'
            )
        else:
            body = (
                f'<rect width="8" height="8" fill="{s.shade}"/>'
                f'<circle cx="4" cy="4" r="1.6" fill="{INK}"/>'
            )
        parts.append(
            f'<pattern id="{pid}" width="8" height="8" patternUnits="userSpaceOnUse">{body}'
            "</pattern>"
        )
    return "<defs>" + "".join(parts) + "</defs>"


def svg(chart: Chart) -> str:
    """A self-contained SVG document (no script, no external reference)."""
    d = layout(chart)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{d.width}" height="{d.height}"'
        f' viewBox="0 0 {d.width} {d.height}" role="img" aria-labelledby="{chart.slug}-titre"'
        f' font-family="{FONT}">',
        f'<title id="{chart.slug}-titre">{escape(chart.title)}</title>',
        _pattern_defs(chart),
        f'<rect width="{d.width}" height="{d.height}" fill="#ffffff"/>',
    ]
    for x1, y1, x2, y2 in d.lines:
        out.append(
            f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{INK}"/>'
        )
    for b in d.boxes:
        fill = f"url(#{chart.slug}-motif-{b.series})" if b.series >= 0 else "#ffffff"
        out.append(
            f'<rect x="{b.x:.1f}" y="{b.y:.1f}" width="{b.w:.1f}" height="{b.h:.1f}"'
            f' fill="{fill}" stroke="{INK}" stroke-width="0.8"/>'
        )
    for t in d.texts:
        weight = ' font-weight="bold"' if t.bold else ""
        out.append(
            f'<text x="{t.x:.1f}" y="{t.y:.1f}" font-size="{t.size}"'
            f' text-anchor={quoteattr(t.anchor)} fill="{INK}"{weight}>{escape(t.text)}</text>'
        )
    out.append("</svg>")
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# PNG (Pillow), from the same drawing, twice the size for a sharp slide


SCALE = 2


@cache
def _font(size: int, bold: bool) -> object:
    from PIL import ImageFont

    path = FONT_FILE.with_name("DejaVuSans-Bold.ttf") if bold else FONT_FILE
    if path.exists():
        return ImageFont.truetype(str(path), size * SCALE)
    return ImageFont.load_default(size * SCALE)


def _fill_pattern(draw: object, box: Box, series: Series) -> None:
    from PIL import ImageDraw

    assert isinstance(draw, ImageDraw.ImageDraw)
    x0, y0 = box.x * SCALE, box.y * SCALE
    x1, y1 = (box.x + box.w) * SCALE, (box.y + box.h) * SCALE
    draw.rectangle((x0, y0, x1, y1), fill=series.shade)
    step = 8 * SCALE
    if series.pattern == "hatch":
        # Diagonal strokes clipped to the box: from its bottom edge up to the right.
        start = int(x0 - (y1 - y0))
        for sx in range(start, int(x1), step):
            ax, ay, bx, by = float(sx), y1, sx + (y1 - y0), y0
            if ax < x0:
                ay, ax = y1 - (x0 - ax), x0
            if bx > x1:
                by, bx = by + (bx - x1), x1
            draw.line((ax, ay, bx, by), fill=INK, width=SCALE)
    elif series.pattern == "dots":
        for px in range(int(x0) + step // 2, int(x1), step):
            for py in range(int(y0) + step // 2, int(y1), step):
                r = 1.6 * SCALE
                draw.ellipse((px - r, py - r, px + r, py + r), fill=INK)
    draw.rectangle((x0, y0, x1, y1), outline=INK, width=1)


def png(chart: Chart) -> bytes:
    from PIL import Image, ImageDraw

    d = layout(chart)
    image = Image.new("RGB", (d.width * SCALE, d.height * SCALE), "#ffffff")
    draw = ImageDraw.Draw(image)
    for x1, y1, x2, y2 in d.lines:
        draw.line((x1 * SCALE, y1 * SCALE, x2 * SCALE, y2 * SCALE), fill=INK, width=SCALE)
    for b in d.boxes:
        _fill_pattern(draw, b, chart.series[b.series] if b.series >= 0 else LABEL)
    anchors = {"start": "ls", "middle": "ms", "end": "rs"}
    for t in d.texts:
        draw.text(
            (t.x * SCALE, t.y * SCALE),
            t.text,
            fill=INK,
            font=_font(t.size, t.bold),  # type: ignore[arg-type]
            anchor=anchors[t.anchor],
        )
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def table_rows(chart: Chart) -> list[tuple[str, list[str]]]:
    """The chart's figures as table rows (category, one French figure per series)."""
    return [
        (name, [chart.text(v) for v in row])
        for name, row in zip(chart.categories, chart.values, strict=True)
    ]
