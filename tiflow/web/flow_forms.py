"""A flow's French form on a tiflow page, built from the same JSON schema as Prefect's form.

The flows take pydantic models from `flows/forms.py` (French titles and descriptions); Prefect
publishes them as the deployment's parameter schema, and this module reads that very schema
(`flow.parameters`) to draw plain HTML fields: text, whole numbers, dates, date and time,
choices, yes/no choices, lists (one item per line) and tables of rows (budget lines, milestones,
decisions…: a few blank rows). Submitted values are put back in the schema's shape and
validated by the flow's own parameter types (pydantic), so a refusal is the form's own French
message, per field; pydantic's generic messages are translated here.

A field named ``territory`` (or ``territories``) is fixed to the page's territory: from a
territory's pages a coordinator starts flows for that territory only.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, field
from typing import Any

from pydantic import TypeAdapter, ValidationError

ROWS = 4  # blank rows offered for a table (budget lines, decisions…)
TERRITORY_FIELDS = ("territory", "territories")
_FRENCH = {
    "missing": "à remplir",
    "int_parsing": "nombre entier attendu",
    "int_from_float": "nombre entier attendu",
    "float_parsing": "nombre attendu",
    "decimal_parsing": "nombre attendu",
    "bool_parsing": "oui ou non attendu",
    "date_parsing": "date attendue",
    "date_from_datetime_parsing": "date attendue",
    "datetime_parsing": "date et heure attendues",
    "datetime_from_date_parsing": "date et heure attendues",
    "greater_than_equal": "trop petit (au moins {ge})",
    "greater_than": "trop petit (plus de {gt})",
    "less_than_equal": "trop grand (au plus {le})",
    "less_than": "trop grand (moins de {lt})",
    "string_too_long": "trop long (au plus {max_length} caractères)",
    "string_too_short": "à remplir",
    "enum": "choix inconnu",
    "literal_error": "choix inconnu",
    "extra_forbidden": "champ inconnu",
    "list_type": "liste attendue",
    "too_long": "trop d'éléments",
}


@dataclass
class FormField:
    path: str  # the input's name: "params.year", "proposal.budget.0.amount"
    key: str
    title: str
    description: str
    kind: str  # text, integer, number, date, datetime, boolean, choice, lines, rows
    required: bool = False
    default: Any = None
    choices: list[tuple[str, str]] = field(default_factory=list)
    rows: list[list[FormField]] = field(default_factory=list)  # kind "rows"
    columns: list[FormField] = field(default_factory=list)  # kind "rows": the headers
    fixed: str | None = None  # the territory: shown, not editable


@dataclass
class Parameter:
    name: str
    title: str
    description: str
    fields: list[FormField]
    advanced: bool  # settings with defaults: folded on the page


def _resolve(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref") or next(
        (s["$ref"] for s in schema.get("anyOf", []) + schema.get("allOf", []) if "$ref" in s),
        None,
    )
    return {**defs[ref.rsplit("/", 1)[1]], **schema} if ref else schema


def _kind(schema: dict[str, Any]) -> str:
    if "enum" in schema:
        return "choice"
    kind = str(schema.get("type", ""))
    if kind == "string" and schema.get("format") in ("date", "date-time"):
        return "date" if schema["format"] == "date" else "datetime"
    return {"integer": "integer", "number": "number", "boolean": "boolean"}.get(kind, "text")


def _choice_label(value: Any) -> str:
    return str(value).replace("_", " ")


def _field(
    path: str,
    key: str,
    schema: dict[str, Any],
    defs: dict[str, Any],
    required: bool,
    territory: str,
    default: Any,
) -> FormField | None:
    schema = _resolve(schema, defs)
    title = str(schema.get("title") or key)
    description = str(schema.get("description") or "")
    value = schema.get("default", default)
    if key in TERRITORY_FIELDS:
        return FormField(path, key, title, description, "text", fixed=territory)
    if schema.get("type") == "array":
        items = _resolve(schema.get("items", {}), defs)
        if items.get("type") == "object" or "properties" in items:
            columns = _fields(path + ".0", items, defs, territory, {})
            rows = [_fields(f"{path}.{i}", items, defs, territory, {}) for i in range(ROWS)]
            return FormField(
                path, key, title, description, "rows", required, None, [], rows, columns
            )
        lines = "\n".join(str(v) for v in value) if isinstance(value, list) else ""
        return FormField(path, key, title, description, "lines", required, lines)
    if schema.get("type") == "object" or "properties" in schema:
        return None  # a nested setting: its defaults
    kind = _kind(schema)
    choices = [(str(v), _choice_label(v)) for v in schema.get("enum", [])]
    return FormField(path, key, title, description, kind, required, value, choices)


def _fields(
    path: str,
    schema: dict[str, Any],
    defs: dict[str, Any],
    territory: str,
    defaults: dict[str, Any],
) -> list[FormField]:
    required = set(schema.get("required", []))
    found = []
    for key, sub in schema.get("properties", {}).items():
        made = _field(
            f"{path}.{key}", key, sub, defs, key in required, territory, defaults.get(key)
        )
        if made is not None:
            found.append(made)
    return found


def parameters_of(flow: Any, territory: str) -> list[Parameter]:
    """The flow's parameters as form sections, from its published schema."""
    schema = flow.parameters.model_dump()
    defs = schema.get("definitions", {})
    result = []
    for name, prop in schema["properties"].items():
        resolved = _resolve(prop, defs)
        title = str(prop.get("title") or name)
        description = str(prop.get("description") or "")
        default = prop.get("default")
        if resolved.get("type") == "object" or "properties" in resolved:
            fields = _fields(name, resolved, defs, territory, default or {})
        else:
            made = _field(
                name, name, prop, defs, name in schema.get("required", []), territory, None
            )
            fields = [made] if made else []
        advanced = isinstance(default, dict) and bool(default)
        result.append(Parameter(name, title, description, fields, advanced))
    return result


# --- Back from the form -----------------------------------------------------------------------


def _value(f: FormField, form: dict[str, str]) -> Any:
    """The submitted value in the schema's shape; None: not given (the flow's default)."""
    if f.fixed is not None:
        return [f.fixed] if f.key == "territories" else f.fixed
    if f.kind == "rows":
        rows = [_object(row, form) for row in f.rows]
        return [r for r in rows if r] or None  # rows left empty are no rows
    text = form.get(f.path, "").strip()
    if f.kind == "boolean":  # a choice oui / non / empty (the flow's default), not a box
        return {"oui": True, "non": False}.get(text)
    if f.kind == "lines":
        items = [line.strip() for line in text.splitlines() if line.strip()]
        return items or None
    if not text:
        return None
    if f.kind == "integer" and text.lstrip("-").isdigit():
        return int(text)
    if f.kind == "choice" and text.isdigit() and all(v.isdigit() for v, _ in f.choices):
        return int(text)
    return text


def _object(fields: list[FormField], form: dict[str, str]) -> dict[str, Any]:
    values = {f.key: _value(f, form) for f in fields}
    return {k: v for k, v in values.items() if v is not None}


def submitted(parameters: list[Parameter], form: dict[str, str]) -> dict[str, Any]:
    """The raw parameters (before validation) from the submitted form."""
    result: dict[str, Any] = {}
    for p in parameters:
        if len(p.fields) == 1 and p.fields[0].path == p.name:
            value = _value(p.fields[0], form)
            if value is not None:
                result[p.name] = value
            continue
        values = _object(p.fields, form)
        if values:
            result[p.name] = values
    return result


def validated(flow: Any, raw: dict[str, Any], parameters: list[Parameter]) -> dict[str, Any]:
    """Check `raw` with the flow's own parameter types; JSON-ready parameters for the run.
    Raises `FormProblems` (French, one per field)."""
    hints = typing.get_type_hints(flow.fn, include_extras=True)
    problems: dict[str, list[str]] = {}
    result: dict[str, Any] = {}
    for name, value in raw.items():
        adapter: TypeAdapter[Any] = TypeAdapter(hints[name])
        try:
            checked = adapter.validate_python(value)
        except ValidationError as error:
            for item in error.errors():
                path, label = _where(name, item["loc"], parameters)
                problems.setdefault(path, []).append(f"{label} : {french(item)}")
            continue
        result[name] = adapter.dump_python(checked, mode="json", exclude_none=True)
    if problems:
        raise FormProblems(problems)
    return result


class FormProblems(Exception):
    def __init__(self, problems: dict[str, list[str]]) -> None:
        super().__init__("; ".join(p for ps in problems.values() for p in ps))
        self.problems = problems


def french(item: Any) -> str:
    kind = str(item.get("type", ""))
    if kind == "value_error":
        return str(item.get("msg", "")).removeprefix("Value error, ")
    text = _FRENCH.get(kind)
    if text is None:
        return "valeur refusée"
    try:
        return text.format(**(item.get("ctx") or {}))
    except (KeyError, IndexError):
        return text


def _where(name: str, loc: tuple[Any, ...], parameters: list[Parameter]) -> tuple[str, str]:
    """The input's name and French label of an error's location (a union's member names in
    the location are skipped)."""
    param = next(p for p in parameters if p.name == name)
    fields = param.fields
    path, labels = name, [param.title]
    for part in loc:
        if isinstance(part, int):
            path += f".{part}"
            labels.append(f"ligne {part + 1}")
            continue
        match = next((f for f in fields if f.key == part), None)
        if match is None:
            continue
        path += f".{part}"
        fields = match.columns
        labels.append(match.title)
    return path, " › ".join(labels[1:] or labels)
