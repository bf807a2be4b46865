"""Files that lie or that would keep the import busy for hours: formulas without a cached value,
a cell at XFD1048576, zip bombs, files beyond the documented limits. Each is refused (or read)
in seconds with a French message, and nothing is written (SQLite and PostgreSQL)."""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from openpyxl import load_workbook
from openpyxl.styles import Font
from sqlalchemy.engine import Engine
from sqlmodel import select

from models.errors import InvalidInput, TiflowError
from models.tables import ActionSheet, Funding
from models.uow import UnitOfWork
from tests.spreadsheet.conftest import Sheets
from tests.spreadsheet.test_plan_import import table_counts
from tiflow.spreadsheet import import_plan
from tiflow.spreadsheet.limits import MAX_COLUMNS, MAX_FILE_BYTES, MAX_ROWS

UowFactory = Callable[[], UnitOfWork]


def _with_formulas(plan: Sheets) -> Sheets:
    """What a program (not a spreadsheet) writes: formulas, no cached value."""
    funding = plan["Financements"]
    funding[2][4] = "=1000+234,5"  # « Accordé » of FA-03, optional: it used to become 0,00 €
    plan["Budget"][1][3] = "=SUM(100000,80000)"  # « Montant », required
    return plan


def test_formula_without_cached_value_is_refused_with_sheet_row_and_column(
    engine: Engine, uow: UowFactory, write_workbook: Callable[..., Path], plan_sheets: Sheets
) -> None:
    path = write_workbook(_with_formulas(plan_sheets))
    before = table_counts(engine)

    with uow() as u, pytest.raises(InvalidInput) as raised:
        import_plan(u, path)

    problems = raised.value.problems
    assert len(problems) == 2, problems
    budget, funding = problems
    assert budget.startswith(
        "Feuille « Budget », ligne 2, colonne « Montant » : formule « =SUM(100000,80000) »"
        " sans valeur calculée"
    )
    assert funding.startswith(
        "Feuille « Financements », ligne 3, colonne « Accordé » : formule « =1000+234,5 »"
        " sans valeur calculée"
    )
    assert "Ouvrez-le et enregistrez-le dans Excel ou LibreOffice" in funding
    assert "tapez la valeur" in funding
    assert table_counts(engine) == before  # nothing half-written


def test_formula_with_the_value_a_spreadsheet_saved_is_read_as_that_value(
    uow: UowFactory, write_workbook: Callable[..., Path], plan_sheets: Sheets, tmp_path: Path
) -> None:
    written = write_workbook(_with_formulas(plan_sheets))
    # What Excel or LibreOffice would have saved: each formula with its computed value.
    path = tmp_path / "enregistre.xlsx"
    with zipfile.ZipFile(written) as source, zipfile.ZipFile(path, "w") as target:
        for part in source.infolist():
            data = source.read(part)
            for formula, value in ((b"1000+234,5", b"1234.5"), (b"SUM(100000,80000)", b"180000")):
                data = data.replace(
                    b"<f>%s</f><v />" % formula, b"<f>%s</f><v>%s</v>" % (formula, value)
                )
            target.writestr(part, data)

    with uow() as u:
        import_plan(u, path)
        u.commit()
    with uow() as u:
        fa03 = u.repo.action("grand-est-touraine", "FA-03")
        (funding,) = u.session.exec(select(Funding).where(Funding.action_id == fa03.id)).all()
        assert str(funding.granted) == "1234.50"


def _far_cell_workbook(tmp_path: Path, plan: Sheets, *, with_value: bool) -> Path:
    from openpyxl import Workbook

    workbook = Workbook()
    workbook.remove(workbook.active)  # type: ignore[arg-type]
    for title, rows in plan.items():
        worksheet = workbook.create_sheet(title)
        for row in rows:
            worksheet.append(row)
    far = workbook["Actions"]["XFD1048576"]
    if with_value:
        far.value = "x"
    else:
        far.font = Font(bold=True)  # formatted, empty: a cell that exists with nothing in it
    path = tmp_path / "loin.xlsx"
    workbook.save(path)
    return path


def test_a_value_at_xfd1048576_is_refused_at_once(
    engine: Engine, uow: UowFactory, plan_sheets: Sheets, tmp_path: Path
) -> None:
    path = _far_cell_workbook(tmp_path, plan_sheets, with_value=True)
    assert load_workbook(path, read_only=True)["Actions"].max_row == 1048576  # as declared
    before = table_counts(engine)

    with uow() as u, pytest.raises(TiflowError) as raised:
        import_plan(u, path)

    message = str(raised.value)
    assert message.startswith("Feuille « Actions » : une cellule remplie en XFD1048576 dépasse")
    assert f"{MAX_ROWS} lignes et {MAX_COLUMNS} colonnes par feuille" in message
    assert table_counts(engine) == before


def test_an_empty_formatted_cell_at_xfd1048576_costs_nothing(
    uow: UowFactory, plan_sheets: Sheets, tmp_path: Path
) -> None:
    path = _far_cell_workbook(tmp_path, plan_sheets, with_value=False)

    with uow() as u:
        report = import_plan(u, path)
        u.commit()

    assert report.rows == sum(len(rows) - 1 for rows in plan_sheets.values())
    with uow() as u:
        numbers = [a.number for a in u.session.exec(select(ActionSheet))]
    assert sorted(numbers) == ["FA-02", "FA-03", "FA-11"]


def test_zip_bomb_is_refused_from_the_archive_table_before_inflating(
    uow: UowFactory, write_workbook: Callable[..., Path], plan_sheets: Sheets
) -> None:
    path = write_workbook(plan_sheets)
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/media/rembourrage.xml", b" " * (8 * 1024 * 1024))

    with uow() as u, pytest.raises(TiflowError) as raised:
        import_plan(u, path)

    assert "l'élément « xl/media/rembourrage.xml » se décompresse" in str(raised.value)
    assert "fichier piégé" in str(raised.value)


def test_file_beyond_the_size_limit_is_refused_before_reading(
    uow: UowFactory, tmp_path: Path
) -> None:
    path = tmp_path / "enorme.csv"
    with path.open("wb") as file:
        file.truncate(MAX_FILE_BYTES + 1)  # sparse: nothing to write

    with uow() as u, pytest.raises(TiflowError) as raised:
        import_plan(u, path)

    assert str(raised.value).startswith("Fichier trop volumineux : « enorme.csv » fait 20 Mo")


def test_csv_beyond_the_row_or_column_limit_is_refused(uow: UowFactory, tmp_path: Path) -> None:
    rows = tmp_path / "lignes.csv"
    rows.write_text("Numéro;Intitulé;Axe\n" + "FA-01;Titre;Compétences\n" * (MAX_ROWS + 1))
    columns = tmp_path / "colonnes.csv"
    columns.write_text("Numéro;Intitulé;Axe\n" + "FA-01;Titre;Compétences" + ";" * 300 + "\n")

    for path, line in ((rows, MAX_ROWS + 2), (columns, 2)):
        with uow() as u, pytest.raises(TiflowError) as raised:
            import_plan(u, path)
        assert str(raised.value).startswith(
            f"Fichier CSV refusé : « {path.name} » dépasse les limites d'un plan"
        )
        assert str(raised.value).endswith(f"à la ligne {line}.")
