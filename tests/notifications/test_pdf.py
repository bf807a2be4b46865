"""The PDF renderer of the COPIL dossier: French text in DejaVu Sans (« € », « œ », narrow
no-break spaces), tables over several pages with their headings, SVG charts as vectors."""

from __future__ import annotations

import subprocess
from decimal import Decimal
from pathlib import Path

from PIL import Image

from models.money import format_eur
from notifications.pdf import Heading, Paragraph, Svg, Table, render_pdf

BARS = """<svg xmlns="http://www.w3.org/2000/svg" width="640" height="200" viewBox="0 0 640 200">
<rect x="20" y="40" width="120" height="140" fill="#000091"/>
<rect x="180" y="100" width="120" height="80" fill="#6a6af4"/>
<text x="20" y="30" font-size="16">Prévu</text></svg>"""


def _pdf_text(tmp_path: Path, data: bytes) -> str:
    path = tmp_path / "doc.pdf"
    path.write_bytes(data)
    return subprocess.run(
        ["pdftotext", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout


def test_french_text_and_long_tables_survive_in_the_pdf(tmp_path: Path) -> None:
    amount = format_eur(Decimal("1250000.5"))
    rows = [(f"FA-{i:02d}", "Cœur de bourg : réhabilitation", amount) for i in range(1, 91)]
    data = render_pdf(
        "Dossier du COPIL du jeudi 23 janvier 2025 à 9 h 30",
        [
            Paragraph("Territoire d'industrie Grand Est Touraine", bold=True),
            Heading("Ordre du jour"),
            Table(("N°", "Action", "Budget"), rows, widths=(15, 60, 25), numeric=frozenset({2})),
        ],
        footer="Grand Est Touraine",
    )
    text = _pdf_text(tmp_path, data)
    assert "Cœur de bourg : réhabilitation" in text
    assert "1 250 000,50 €" in text.replace("\u202f", " ").replace("\xa0", " ")
    assert "FA-90" in text
    assert text.count("Budget") >= 2  # the headings again on the next page
    assert "page 2/" in text


def test_an_svg_chart_is_drawn_in_the_pdf(tmp_path: Path) -> None:
    data = render_pdf("Graphiques", [Svg("Budget par axe", BARS)])
    (tmp_path / "c.pdf").write_bytes(data)
    subprocess.run(
        ["pdftoppm", "-r", "40", "-png", str(tmp_path / "c.pdf"), str(tmp_path / "p")], check=True
    )
    (page,) = tmp_path.glob("p-*.png")
    image = Image.open(page).convert("RGB")
    # getcolors, not getdata: the latter is deprecated (removed in Pillow 14)
    colours = image.getcolors(image.width * image.height) or []
    blue = sum(n for n, (r, g, b) in colours if b > 120 and r < 60 and g < 60)
    assert blue > 200  # the dark blue bar is there
    assert "Budget par axe" in _pdf_text(tmp_path, data)
