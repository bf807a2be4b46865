"""Reading a COPIL's decisions from a CSV or JSON file (`tiflow run copil --decisions`)."""

from __future__ import annotations

import json
import re
from datetime import datetime, time
from pathlib import Path

import pytest
import typer

from flows.forms import Outcome
from models.errors import InvalidInput, TiflowError
from tiflow.cli.decisions_file import OUTCOMES, Decision, read_decisions
from tiflow.cli.run_commands import datetime_option


def test_every_outcome_of_the_form_can_be_written_in_a_file() -> None:
    assert tuple(o.value for o in Outcome) == OUTCOMES


def test_a_french_excel_csv_is_read_whatever_the_accents_case_and_encoding(
    tmp_path: Path,
) -> None:
    rows = (
        "N°;DECISION;Conditions;Commentaire\r\n"
        "FA-07;Validée;Bilan à six mois;\r\n"
        ";;;\r\n"
        "fa-12;revision_requested;;Chiffrage à préciser\r\n"
        "FA-09;non examinee;;\r\n"
    )
    for encoding, name in (("utf-8-sig", "bom.csv"), ("cp1252", "excel.csv")):
        path = tmp_path / name
        path.write_bytes(rows.encode(encoding))
        read = read_decisions(path)
        assert read.decisions == [
            Decision("FA-07", "validée", "Bilan à six mois", ""),
            Decision("fa-12", "révision demandée", "", "Chiffrage à préciser"),
            Decision("FA-09", "non examinée", "", ""),
        ]


def test_a_comma_separated_csv_is_read_too(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("numero,decision\nFA-07,rejetée\n", encoding="utf-8")
    assert read_decisions(path).decisions == [Decision("FA-07", "rejetée")]


def test_every_bad_row_is_reported_with_its_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text(
        "numéro;décision\nFA-07;oui\n;validée\nFA-09;\nFA-10;ajournée\n", encoding="utf-8"
    )
    with pytest.raises(InvalidInput) as caught:
        read_decisions(path)
    assert caught.value.problems == [
        "Ligne 2, colonne « décision » : « oui » n'est pas une décision de COPIL ; choisissez"
        " parmi : validée, rejetée, ajournée, révision demandée, non examinée.",
        "Ligne 3, colonne « numéro » : indiquez le numéro de l'action (ex. FA-07).",
        "Ligne 4, colonne « décision » : indiquez la décision.",
    ]


def test_missing_headers_and_unknown_formats_are_refused_in_french(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("action;avis\nFA-07;validée\n", encoding="utf-8")
    with pytest.raises(InvalidInput) as caught:
        read_decisions(path)
    assert caught.value.problems == [
        "Ligne 1 (en-têtes) : colonne « décision » absente ; en-têtes attendus :"
        " numéro;décision;conditions;commentaire"
    ]
    other = tmp_path / "d.yaml"
    other.write_text("- FA-07\n", encoding="utf-8")
    with pytest.raises(
        TiflowError, match=re.escape("Format de fichier non pris en charge : « d.yaml »")
    ):
        read_decisions(other)
    empty = tmp_path / "vide.csv"
    empty.write_text("numéro;décision\n", encoding="utf-8")
    with pytest.raises(TiflowError, match="ne contient aucune décision"):
        read_decisions(empty)


def test_json_takes_the_flow_form_or_a_plain_list(tmp_path: Path) -> None:
    form = tmp_path / "form.json"
    form.write_text(
        json.dumps(
            {
                "copil_id": 1,
                "decisions": [{"number": "FA-07", "outcome": "validée", "conditions": "X"}],
                "budget_year": 2025,
                "validated_budget": "1 250 000,00",
                "recorded_by": "Claire Moreau",
            }
        ),
        encoding="utf-8",
    )
    read = read_decisions(form)
    assert read.decisions == [Decision("FA-07", "validée", "X", "")]
    assert (read.budget_year, read.validated_budget, read.recorded_by) == (
        2025,
        "1 250 000,00",
        "Claire Moreau",
    )
    plain = tmp_path / "list.json"
    plain.write_text(
        json.dumps([{"numéro": "FA-12", "décision": "deferred"}, {"number": "FA-07"}]),
        encoding="utf-8",
    )
    with pytest.raises(InvalidInput) as caught:
        read_decisions(plain)
    assert caught.value.problems == ["Décision n° 2, « décision » : indiquez la décision."]
    broken = tmp_path / "broken.json"
    broken.write_text('{"decisions": [', encoding="utf-8")
    with pytest.raises(
        TiflowError, match=re.escape("Fichier JSON illisible « broken.json », ligne 1")
    ):
        read_decisions(broken)


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("23/01/2025 09:30", datetime(2025, 1, 23, 9, 30)),
        ("23/01/2025 9h30", datetime(2025, 1, 23, 9, 30)),
        ("23/01/2025 14h", datetime(2025, 1, 23, 14, 0)),
        ("2025-01-23T09:30", datetime(2025, 1, 23, 9, 30)),
        ("23/01/2025", datetime(2025, 1, 23, 9, 30)),
    ],
)
def test_meeting_dates_are_read_the_french_way(typed: str, expected: datetime) -> None:
    assert datetime_option(typed, "'--date'", time(9, 30)) == expected


def test_an_impossible_time_is_a_usage_error() -> None:
    with pytest.raises(typer.BadParameter, match="heure illisible « 9:75 »"):
        datetime_option("23/01/2025 9:75", "'--date'", time(9, 30))
