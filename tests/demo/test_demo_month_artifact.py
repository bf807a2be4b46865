"""The demo's month runs publish one artifact each: the flows' summaries, gathered day by day
under the timeline's lines. No Prefect needed: gathered summaries are never sent."""

from __future__ import annotations

from datetime import date

from flows._shared import Summary, publish_summary, summaries_gathered
from tiflow.demo_year import Happening, month_markdown


def test_summaries_published_inside_the_block_are_gathered_in_order() -> None:
    with summaries_gathered() as outer:
        publish_summary("# Financement de FA-03\n", key="financement-fa-03", description="a")
        with summaries_gathered() as inner:
            publish_summary("# Envoi\n", key="envoi-messages-en-attente", description="b")
        publish_summary("# Rappels\n", key="rappels-echeances", description="c")
    assert [s.key for s in outer] == ["financement-fa-03", "rappels-echeances"]
    assert [s.key for s in inner] == ["envoi-messages-en-attente"]


def test_a_funding_record_tells_its_whole_line_on_its_own() -> None:
    record = Happening(
        date(2024, 6, 14),
        " ; il manque 90 000,00 €, reste validée",
        "financement",
        number="FA-03",
        detail="CC TEV refusé",
    )
    assert (
        record.line() == "FA-03 : financement CC TEV refusé ; il manque 90 000,00 €, reste validée"
    )
    assert Happening(date(2024, 6, 14), "FA-05 terminée").line() == "FA-05 terminée"


def test_the_month_tells_each_day_its_lines_then_its_flows_summaries_under_it() -> None:
    june_3, june_14 = date(2024, 6, 3), date(2024, 6, 14)
    shown = {june_3.isoformat(): [""], june_14.isoformat(): ["FA-03 : financement CC TEV refusé"]}
    summaries = {
        june_3: [Summary("envoi-messages-en-attente", "", "# Envoi des messages\n\n| 1 |")],
        june_14: [Summary("financement", "", "# Financement de FA-03\n\nÉtat : **validée**.")],
    }
    text = month_markdown(date(2024, 6, 1), shown, summaries)
    assert text.endswith("\n")
    assert text.splitlines() == [
        "# Démonstration : juin 2024",
        "",
        "## Journée du lundi 3 juin 2024",
        "",
        "### Envoi des messages",
        "",
        "| 1 |",
        "",
        "## Journée du vendredi 14 juin 2024",
        "",
        "- FA-03 : financement CC TEV refusé",
        "",
        "### Financement de FA-03",
        "",
        "État : **validée**.",
    ]
