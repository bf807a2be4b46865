"""PDF documents (the COPIL dossier) drawn with fpdf2, in DejaVu Sans for every French glyph.

A document is a plain list of blocks, built by the use case and drawn here:

    pdf = render_pdf(
        "Dossier du COPIL du 25/01/2024",
        [Heading("Ordre du jour"), Table(("N°", "Action"), [("FA-01", "Usine-témoin")])],
        footer="Grand Est Touraine",
    )

DejaVu Sans (regular and bold) ships in `notifications/fonts/` with its licence
(`LICENSE-DejaVu.txt`, Bitstream Vera licence, from Debian's fonts-dejavu-core): fpdf2's
built-in fonts are Latin-1 only and would refuse « € », « œ » or the narrow no-break space of
French amounts. fpdf2 embeds only the glyphs used (subset), so a dossier stays small.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import TableCellFillMode

FONTS = Path(__file__).parent / "fonts"
FAMILY = "DejaVu"
GREY = (235, 235, 235)


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 1  # 1: a section (new page when `new_page`), 2: a sub-section
    new_page: bool = False


@dataclass(frozen=True)
class Paragraph:
    text: str
    bold: bool = False


@dataclass(frozen=True)
class Table:
    headings: tuple[str, ...]
    rows: Sequence[Sequence[str]]
    widths: tuple[int, ...] | None = None  # relative column widths
    numeric: frozenset[int] = field(default_factory=frozenset)  # right-aligned columns
    empty: str = "Aucune ligne."


@dataclass(frozen=True)
class Svg:
    """A chart as an SVG document (fpdf2 draws it as vectors), with its title."""

    title: str
    svg: str


Block = Heading | Paragraph | Table | Svg


class _Document(FPDF):
    footer_text = ""

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font(FAMILY, size=8)
        self.cell(0, 6, f"{self.footer_text} — page {self.page_no()}/{{nb}}", align="C")


def render_pdf(
    title: str, blocks: Sequence[Block], *, footer: str = "", created: datetime | None = None
) -> bytes:
    """The PDF of `blocks` under `title` (A4 portrait), its pages numbered « page n/N »."""
    pdf = _Document(orientation="P", unit="mm", format="A4")
    pdf.footer_text = footer or title
    # Also under the family name the charts' SVG asks for (notifications/charts.py FONT):
    # otherwise fpdf2 falls back to a core font, which has no € nor no-break spaces.
    for family in (FAMILY, "DejaVu Sans"):
        pdf.add_font(family, "", str(FONTS / "DejaVuSans.ttf"))
        pdf.add_font(family, "B", str(FONTS / "DejaVuSans-Bold.ttf"))
    pdf.set_title(title)
    pdf.set_lang("fr-FR")
    pdf.set_creator("tiflow")
    if created is not None:
        pdf.set_creation_date(created)
    pdf.set_auto_page_break(auto=True, margin=16)
    pdf.add_page()
    pdf.set_font(FAMILY, "B", 16)
    pdf.multi_cell(0, 8, title, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    for block in blocks:
        _draw(pdf, block)
    return bytes(pdf.output())


def _draw(pdf: FPDF, block: Block) -> None:
    if isinstance(block, Heading):
        if block.new_page:
            pdf.add_page()
        else:
            pdf.ln(3)
        pdf.set_font(FAMILY, "B", 13 if block.level == 1 else 11)
        pdf.multi_cell(0, 7, block.text, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(1)
    elif isinstance(block, Paragraph):
        pdf.set_font(FAMILY, "B" if block.bold else "", 10)
        pdf.multi_cell(0, 5, block.text, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(1)
    elif isinstance(block, Table):
        _table(pdf, block)
    else:
        pdf.set_font(FAMILY, "B", 10)
        pdf.multi_cell(0, 5, block.title, new_x="LMARGIN", new_y="NEXT")
        pdf.image(io.BytesIO(block.svg.encode("utf-8")), w=pdf.epw)
        pdf.ln(2)


def _table(pdf: FPDF, block: Table) -> None:
    pdf.set_font(FAMILY, size=8.5)
    if not block.rows:
        pdf.multi_cell(0, 5, block.empty, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(1)
        return
    align = tuple("RIGHT" if i in block.numeric else "LEFT" for i in range(len(block.headings)))
    with pdf.table(
        col_widths=block.widths,
        text_align=align,
        cell_fill_color=GREY,
        cell_fill_mode=TableCellFillMode.ROWS,
        line_height=4.5,
        repeat_headings=1,
    ) as table:
        head = table.row()  # the first row: bold headings, repeated on each page
        for text in block.headings:
            head.cell(text)
        for values in block.rows:
            row = table.row()
            for text in values:
                row.cell(text)
    pdf.set_font(FAMILY, size=10)
    pdf.ln(2)
