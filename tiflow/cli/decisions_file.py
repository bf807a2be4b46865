"""A COPIL's decisions read from a file, for `tiflow run copil COPIL_ID --decisions FICHIER`.

**CSV** (what a coordinator types in a spreadsheet during the meeting): a header row, then one
row per action; `;` separator (French Excel) or `,`; UTF-8 (with or without BOM) or
Windows-1252. Headers are matched without accents or case::

    numéro;décision;conditions;commentaire
    FA-07;validée;Bilan à six mois;
    FA-12;révision demandée;;Chiffrage à préciser

« numéro » and « décision » are required; « décision » is one of validée, rejetée, ajournée,
révision demandée, non examinée (accents and case free; the lifecycle's names `validated`,
`revision_requested`… are accepted too).

**JSON** (what `python -m flows tenir-copil` reads): a list of decisions, or an object with
``decisions`` and optionally ``budget_year``, ``validated_budget`` and ``recorded_by``; a
decision is ``{"number": "FA-07", "outcome": "validée", "conditions": "…", "comment": "…"}``
(French keys numéro / décision / commentaire work too).

Every problem of the file is reported at once, with its line (CSV) or position (JSON).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models.errors import InvalidInput, TiflowError
from models.lifecycle import OUTCOME_WORDS, outcome_word
from tiflow.spreadsheet.cells import fold

# The form's outcomes (flows.forms.Outcome values): the words of models.lifecycle.
OUTCOMES = OUTCOME_WORDS

_COLUMNS = {
    "number": ("numero", "n°", "n", "no", "action", "numero de l'action", "number"),
    "outcome": ("decision", "outcome"),
    "conditions": ("conditions", "condition"),
    "comment": ("commentaire", "commentaires", "comment", "motif"),
}
_HEADER_LABELS = {
    "number": "numéro",
    "outcome": "décision",
    "conditions": "conditions",
    "comment": "commentaire",
}
_BY_HEADER = {fold(alias): key for key, aliases in _COLUMNS.items() for alias in aliases}


@dataclass(frozen=True)
class Decision:
    number: str
    outcome: str  # one of OUTCOMES
    conditions: str = ""
    comment: str = ""


@dataclass
class DecisionsFile:
    decisions: list[Decision] = field(default_factory=list)
    budget_year: int | None = None
    validated_budget: str | None = None  # as typed; the form reads French amounts
    recorded_by: str | None = None


def outcome(value: str) -> str | None:
    """The form's outcome for a typed decision, or None if unknown."""
    return outcome_word(value)


def _unknown_outcome(value: str) -> str:
    return f"« {value.strip()} » n'est pas une décision de COPIL ; choisissez parmi : " + ", ".join(
        OUTCOMES
    )


def read_decisions(path: Path) -> DecisionsFile:
    """The decisions of `path` (.csv or .json); InvalidInput lists every problem."""
    if not path.is_file():
        raise TiflowError(f"Fichier introuvable : {path}")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _read_csv(path)
    if suffix == ".json":
        return _read_json(path)
    raise TiflowError(
        f"Format de fichier non pris en charge : « {path.name} ». Donnez les décisions dans un"
        " fichier .csv (numéro;décision;conditions;commentaire) ou .json."
    )


def _text(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def _read_csv(path: Path) -> DecisionsFile:
    text = _text(path.read_bytes())
    first = text.split("\n", 1)[0]
    delimiter = ";" if ";" in first else ("\t" if "\t" in first else ",")
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    if not rows or not any(cell.strip() for cell in rows[0]):
        raise TiflowError(f"Le fichier « {path.name} » est vide.")
    columns: dict[int, str] = {}
    for position, header in enumerate(rows[0]):
        key = _BY_HEADER.get(fold(header))
        if key is not None and key not in columns.values():
            columns[position] = key
    missing = [_HEADER_LABELS[k] for k in ("number", "outcome") if k not in columns.values()]
    if missing:
        raise InvalidInput(
            [
                f"Ligne 1 (en-têtes) : colonne « {name} » absente ; en-têtes attendus :"
                " numéro;décision;conditions;commentaire"
                for name in missing
            ]
        )
    problems: list[str] = []
    result = DecisionsFile()
    for line, row in enumerate(rows[1:], start=2):
        cells = {key: row[i].strip() if i < len(row) else "" for i, key in columns.items()}
        if not any(cells.values()):
            continue
        _add(result, problems, f"Ligne {line}", cells, column_names=True)
    if problems:
        raise InvalidInput(problems)
    if not result.decisions:
        raise TiflowError(f"Le fichier « {path.name} » ne contient aucune décision.")
    return result


def _add(
    result: DecisionsFile,
    problems: list[str],
    where: str,
    cells: dict[str, str],
    *,
    column_names: bool,
) -> None:
    def place(key: str) -> str:
        label = _HEADER_LABELS[key]
        return f"{where}, colonne « {label} »" if column_names else f"{where}, « {label} »"

    number, typed = cells.get("number", ""), cells.get("outcome", "")
    found = outcome(typed) if typed else None
    if not number:
        problems.append(f"{place('number')} : indiquez le numéro de l'action (ex. FA-07).")
    if not typed:
        problems.append(f"{place('outcome')} : indiquez la décision.")
    elif found is None:
        problems.append(f"{place('outcome')} : {_unknown_outcome(typed)}.")
    if number and found:
        result.decisions.append(
            Decision(number, found, cells.get("conditions", ""), cells.get("comment", ""))
        )


def _read_json(path: Path) -> DecisionsFile:
    try:
        data: Any = json.loads(_text(path.read_bytes()))
    except json.JSONDecodeError as error:
        raise TiflowError(
            f"Fichier JSON illisible « {path.name} », ligne {error.lineno} : {error.msg}."
        ) from None
    result = DecisionsFile()
    if isinstance(data, dict):
        entries = data.get("decisions", data.get("décisions"))
        year = data.get("budget_year")
        if year is not None and not isinstance(year, int):
            raise InvalidInput([f"« budget_year » : {json.dumps(year)} n'est pas une année."])
        result.budget_year = year
        budget = data.get("validated_budget")
        result.validated_budget = None if budget is None else str(budget)
        result.recorded_by = data.get("recorded_by")
    else:
        entries = data
    if not isinstance(entries, list):
        raise TiflowError(
            f"« {path.name} » : attendu une liste de décisions, ou un objet avec « decisions »."
        )
    problems: list[str] = []
    for position, entry in enumerate(entries, start=1):
        where = f"Décision n° {position}"
        if not isinstance(entry, dict):
            problems.append(f'{where} : attendu un objet {{"number": …, "outcome": …}}.')
            continue
        cells = {
            key: str(value).strip()
            for name, value in entry.items()
            if (key := _BY_HEADER.get(fold(str(name)))) is not None and value is not None
        }
        _add(result, problems, where, cells, column_names=False)
    if problems:
        raise InvalidInput(problems)
    if not result.decisions and result.validated_budget is None:
        raise TiflowError(f"Le fichier « {path.name} » ne contient aucune décision.")
    return result
