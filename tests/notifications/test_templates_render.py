"""Jinja2 rendering: HTML escapes, text does not, French filters are registered."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from jinja2 import UndefinedError

from notifications.templates import TEMPLATE_DIR, environment, render

SCRIPT = "<script>alert(1)</script>"


def test_html_escapes_a_title_and_the_text_keeps_it_verbatim() -> None:
    text, html = render(
        "generic",
        title=f"FA-07 {SCRIPT}",
        paragraphs=["Comité « Industrie & territoire »"],
        items=['<img src=x onerror="alert(2)">'],
    )
    assert SCRIPT not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img src=x" not in html
    assert "Industrie &amp; territoire" in html
    assert f"FA-07 {SCRIPT}" in text
    assert '<img src=x onerror="alert(2)">' in text
    assert "Comité «\u00a0Industrie & territoire\u00a0»" in text


def test_every_html_template_autoescapes_and_text_templates_do_not() -> None:
    env = environment()
    assert callable(env.autoescape)
    names = sorted(p.name for p in TEMPLATE_DIR.glob("*.j2"))
    assert "generic.html.j2" in names and "_base.html.j2" in names
    for name in names:
        assert env.autoescape(name) is name.endswith(".html.j2"), name


def test_generic_message_in_french_with_layout() -> None:
    text, html = render(
        "generic",
        title="Échéance de l'action FA-07",
        greeting="Bonjour Élodie,",
        paragraphs=["Premier paragraphe.", "Second paragraphe."],
        items_title="Jalons",
        items=["Démonstrateur", "Industry-lab"],
        action_url="https://tiflow.example.org/actions/FA-07",
        action_label="Mettre à jour la fiche",
        territory="Grand Est Touraine",
    )
    assert html.startswith("<!DOCTYPE html>") and '<html lang="fr">' in html
    assert "Territoire d'industrie Grand Est Touraine" in html
    assert 'href="https://tiflow.example.org/actions/FA-07"' in html
    assert text.splitlines()[:2] == ["Échéance de l'action FA-07", "=" * 26]
    assert "  - Démonstrateur\n  - Industry-lab\n" in text
    assert "Mettre à jour la fiche\u00a0: https://tiflow.example.org/actions/FA-07" in text
    assert "\n-- \n" in text


def test_french_filters_are_available() -> None:
    template = environment().from_string(
        "{{ d|date_fr }} | {{ dt|datetime_fr }} | {{ m|eur }} | {{ due|deadline(today) }}"
    )
    out = template.render(
        d=date(2025, 3, 1),
        dt=datetime(2025, 3, 10, 13, 30, tzinfo=UTC),
        m=Decimal("12500"),
        due=date(2025, 3, 7),
        today=date(2025, 3, 10),
    )
    assert out == (
        "samedi 1er mars 2025 | lundi 10 mars 2025 à 14 h 30 | 12\u202f500,00\u00a0€"
        " | en retard de 3 jours"
    )


def test_a_missing_variable_is_an_error_not_an_empty_string() -> None:
    with pytest.raises(UndefinedError):
        render("generic", paragraphs=["Sans titre"])


@pytest.mark.parametrize("name", ["../secrets", "generic.html", "", "Generic"])
def test_template_names_are_plain(name: str) -> None:
    with pytest.raises(ValueError):
        render(name, title="x")


def test_a_reminder_gives_each_action_its_title_line_then_one_line_per_deadline() -> None:
    # The title line ends with a block tag (« pour le compte de … » when the pilot is away):
    # with trim_blocks it ate its own line break and glued the first deadline to the title.
    items = [
        {"what": "Dépôt du dossier (État)", "due": "mardi 2 janvier 2024", "phrase": "demain"},
        {"what": "Dépôt du dossier (Région)", "due": "mardi 2 janvier 2024", "phrase": "demain"},
    ]
    action = {"number": "FA-04", "title": "Couverture mobile", "items": items}
    text, _ = render(
        "reminders",
        greeting="Bonjour Karim,",
        as_of="lundi 1er janvier 2024",
        territory="Grand Est Touraine",
        sections=[{"title": "À venir", "actions": [action]}],
        nudges=[],
        contacts=[],
    )
    lines = text.splitlines()
    title = lines.index("  - FA-04 «\u00a0Couverture mobile\u00a0»")
    assert lines[title + 1 : title + 3] == [
        "    Dépôt du dossier (État)\u00a0: mardi 2 janvier 2024 (demain)",
        "    Dépôt du dossier (Région)\u00a0: mardi 2 janvier 2024 (demain)",
    ]
