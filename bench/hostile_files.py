"""Reading spreadsheets within bounds: hostile files, and what the bounds cost on a normal one.

    python bench/hostile_files.py [ROWS]          # default 20 000 action rows

Times (best of 3) `tiflow.spreadsheet.files.read_raw` — archive checks, one streaming scan
of each sheet (limits, formulas without a value), then openpyxl on the range that holds
values — on:

* hostile files: one value at XFD1048576 (refused), one empty formatted cell there (read),
  a million empty formatted rows (read), a zip bomb part (refused);
* a plain Actions sheet of ROWS rows, against the baseline: openpyxl alone, read-only,
  iterating the same rows (what the reader did before, without any check).

The last line is ``ratio: N.NN`` = tiflow's read / the baseline's, on the plain sheet.
"""

from __future__ import annotations

import argparse
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

from openpyxl import Workbook, load_workbook
from openpyxl.styles import Font

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import busy_cores, scratch_folder
from models.errors import TiflowError
from tiflow.spreadsheet.files import read_raw


def workbook(path: Path, rows: int = 0, far: str | None = None, value: bool = True) -> Path:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Actions"
    sheet.append(["Numéro", "Intitulé", "Axe"])
    for i in range(rows):
        sheet.append([f"FA-{i:05d}", f"Action numéro {i} du plan", "Compétences"])
    if far and value:
        sheet[far] = "x"
    elif far:
        sheet[far].font = Font(bold=True)
    book.save(path)
    return path


def rewrite(source: Path, target: Path, change: Callable[[zipfile.ZipFile], None]) -> Path:
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as new:
        for part in old.infolist():
            new.writestr(part, old.read(part))
        change(new)
    return target


def empty_rows(source: Path, target: Path, count: int) -> Path:
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as new:
        for part in old.infolist():
            data = old.read(part)
            if part.filename == "xl/worksheets/sheet1.xml":
                rows = b"".join(
                    b'<row r="%d" ht="20" customHeight="1"/>' % i for i in range(2, count + 2)
                )
                data = data.replace(b"</row>", b"</row>" + rows, 1)
            new.writestr(part, data)
    return target


def best(action: Callable[[], str]) -> tuple[float, str]:
    times, outcome = [], ""
    for _ in range(3):
        start = time.perf_counter()
        outcome = action()
        times.append(time.perf_counter() - start)
    return min(times), outcome


def tiflow_read(path: Path) -> str:
    try:
        raw = read_raw(path)
    except TiflowError as error:
        return "refusé : " + str(error)[:60] + "…"
    return f"lu, {sum(len(s.rows) for s in raw.sheets.values())} ligne(s)"


def baseline_read(path: Path) -> str:
    book = load_workbook(path, read_only=True, data_only=True)
    count = sum(1 for _ in book["Actions"].iter_rows(values_only=True)) - 1
    book.close()
    return f"lu, {count} ligne(s)"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("rows", nargs="?", type=int, default=20_000, help="plain sheet rows")
    parser.add_argument("--busy", action="store_true", help="keep both cores spinning")
    args = parser.parse_args()
    with scratch_folder() as folder, busy_cores(args.busy):
        measure(folder, args.rows)


def measure(folder: Path, rows: int) -> None:
    small = workbook(folder / "vide.xlsx", far="XFD1048576", value=False)
    hostile = {
        "valeur en XFD1048576": workbook(folder / "loin.xlsx", far="XFD1048576"),
        "cellule vide formatée en XFD1048576": small,
        "1 000 000 lignes vides formatées": empty_rows(small, folder / "lignes.xlsx", 1_000_000),
        "bombe zip (8 Mo d'espaces)": rewrite(
            workbook(folder / "base.xlsx"),
            folder / "bombe.xlsx",
            lambda z: z.writestr("xl/media/x.xml", b" " * (8 * 1024 * 1024)),
        ),
    }
    for label, path in hostile.items():
        seconds, outcome = best(lambda path=path: tiflow_read(path))  # type: ignore[misc]
        print(f"{label:40s} {seconds:7.3f} s  {outcome}")
    plain = workbook(folder / "plan.xlsx", rows=rows)
    ours, outcome = best(lambda: tiflow_read(plain))
    theirs, _ = best(lambda: baseline_read(plain))
    print(f"{'feuille Actions de ' + str(rows) + ' lignes, tiflow':40s} {ours:7.3f} s  {outcome}")
    print(f"{'même feuille, openpyxl seul (référence)':40s} {theirs:7.3f} s")
    print(f"ratio: {ours / theirs:.2f}")


if __name__ == "__main__":
    main()
