"""Names and titles that cannot carry an address or a line break: refused at import with
sheet, row and column, in messages that never print a raw line break (SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from models.errors import InvalidInput
from models.uow import UnitOfWork
from tests.spreadsheet.conftest import Sheets
from tests.spreadsheet.test_plan_import import table_counts
from tiflow.spreadsheet import import_plan

UowFactory = Callable[[], UnitOfWork]


def _hostile_names(plan: Sheets) -> Sheets:
    people, actions, milestones = plan["Personnes"], plan["Actions"], plan["Jalons"]
    people[1][0] = "Isabelle Roux <direction@uimm-touraine.example>"
    people[2][0] = "Karim\nHaddad"
    actions[1][1] = "Industry-lab\r\nBcc: tous@exemple.example"
    milestones[1][1] = "Cahier des charges\u2028des équipements"
    actions[2][2] = "Une description\nsur deux lignes, permise."
    return plan


def _csv_of(plan: Sheets, path: Path) -> Path:
    """The sheets as one CSV in tiflow's layout: « Feuille », then every sheet's headers."""
    headers = ["Feuille"]
    for rows in plan.values():
        headers += [h for h in rows[0] if h not in headers]  # type: ignore[misc]
    with path.open("w", encoding="utf-8-sig", newline="") as file:
        writer = csv.writer(file, delimiter=";")
        writer.writerow(headers)
        for title, (header, *rows) in plan.items():
            for row in rows:
                line = dict(zip(header, row, strict=True))
                writer.writerow([title, *(_text(line.get(h)) for h in headers[1:])])
    return path


def _text(value: object) -> str:
    if isinstance(value, datetime):
        return value.strftime("%d/%m/%Y")
    if isinstance(value, date):
        return value.strftime("%d/%m/%Y")
    return "" if value is None else str(value)


@pytest.mark.parametrize("suffix", [".xlsx", ".csv"])
def test_names_and_titles_with_an_address_or_a_line_break_are_refused(
    engine: Engine,
    uow: UowFactory,
    write_workbook: Callable[..., Path],
    plan_sheets: Sheets,
    tmp_path: Path,
    suffix: str,
) -> None:
    plan = _hostile_names(plan_sheets)
    path = write_workbook(plan) if suffix == ".xlsx" else _csv_of(plan, tmp_path / "plan.csv")
    before = table_counts(engine)

    with uow() as u, pytest.raises(InvalidInput) as raised:
        import_plan(u, path)

    problems = raised.value.problems
    assert all("\n" not in p and "\r" not in p and "\u2028" not in p for p in problems)
    texts = "\n".join(problems)
    assert "« Nom complet » : caractères « < », « > » et « @ » interdits dans un nom" in texts
    assert "« Isabelle Roux <direction@uimm-touraine.example> »" in texts
    assert "« Karim Haddad »" in texts  # quoted on one line
    assert texts.count("retour à la ligne interdit ici") == 3  # the name, the title, the milestone
    assert "Description" not in texts  # the one text that may hold several lines
    assert len(problems) == 4, problems
    assert problems[0].startswith(
        "Feuille « Personnes », ligne 2, colonne « Nom complet »"
        if suffix == ".xlsx"
        else "Ligne 6 (feuille Personnes), colonne « Nom complet »"
    )
    assert table_counts(engine) == before
