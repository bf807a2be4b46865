"""`tiflow import`'s report stays readable (and quick) for a national plan: up to 200 lines,
then only what changes, the rest counted in the Bilan."""

from __future__ import annotations

from pathlib import Path

from tiflow.cli.common import console
from tiflow.cli.plan_files import _show_report
from tiflow.spreadsheet import Change, ImportReport
from tiflow.spreadsheet.importing import EntityChange


def report_of(changes: list[Change]) -> ImportReport:
    actions = [
        EntityChange("Actions", f"FA-{n:05d}", f"Action {n}", change)
        for n, change in enumerate(changes, start=1)
    ]
    return ImportReport(Path("plan.xlsx"), "grand-est-touraine", len(actions), actions, [])


def shown(report: ImportReport) -> str:
    with console.capture() as captured:
        _show_report(report, dry_run=False)
    return captured.get()


def test_a_small_plan_lists_every_action_even_unchanged() -> None:
    text = shown(report_of([Change.UNCHANGED] * 11 + [Change.UPDATED]))
    assert text.count("inchangée") == 11 + 1  # eleven lines and the Bilan
    assert "FA-00012 Action 12" in text
    assert "autres lignes" not in text


def test_a_large_plan_lists_what_changes_and_counts_the_rest() -> None:
    text = shown(report_of([Change.UNCHANGED] * 5000 + [Change.UPDATED] * 3))
    assert "FA-05001 Action 5001" in text and "FA-05003 Action 5003" in text
    assert "FA-00001 Action 1 " not in text
    assert "5003 actions (3 modifiées, 5000 inchangées)" in text
    assert "autres lignes" not in text


def test_a_large_first_import_lists_200_lines_then_counts() -> None:
    text = shown(report_of([Change.CREATED] * 1000))
    assert "FA-00200 Action 200" in text
    assert "FA-00201 Action 201" not in text
    assert "… et 800 autres lignes, comptées dans le bilan." in text
    assert "1000 actions (1000 créées)" in text
