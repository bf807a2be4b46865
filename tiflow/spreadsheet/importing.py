"""Import an action plan from a workbook or CSV file, all or nothing.

    with UnitOfWork(engine) as uow:
        report = import_plan(uow, Path("plan.xlsx"), territory="grand-est-touraine")
        uow.commit()          # or not: a dry run is the same call without the commit

Every row is checked before anything is written; all problems are raised together as one
`InvalidInput` whose lines name the sheet, row and column. Rows are matched to the database by
their natural keys (action number, person e-mail, organisation name, milestone title, indicator
name, budget year and kind, funder and year): a row equal to what the database holds changes
nothing, so re-importing a file is a no-op (no write, no version bump).

Rules the issue left open, decided here (see the README, "Importing and exporting"):
* Organisations and people are created or updated from their sheets; a reference (pilot
  e-mail, partner, funder, a person's organisation) must name a row of the same file or a row
  already in the database for the territory, otherwise it is an error.
* Nothing is ever deleted at the top level (organisations, people, actions). For an action, a
  child sheet (Jalons, Indicateurs, Budget, Financements) that has at least one row for it
  replaces that action's rows of this kind: rows missing from the file are deleted. An action
  with no row in a child sheet keeps its rows.
* The lifecycle is never bypassed: the « État » of a *new* action is its initial state (no
  history row: its history starts at its first transition); for an existing action the cell
  must be empty or equal to the current state, otherwise the import is refused, since a state
  change needs what only the flows record (a COPIL decision, funding, a reason).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlmodel import SQLModel, col, select

from models import clock
from models.collector import collector_paused
from models.errors import InvalidInput, TiflowError
from models.lifecycle import State
from models.tables import (
    ActionPartner,
    ActionSheet,
    BudgetLine,
    Funding,
    Indicator,
    Milestone,
    Organisation,
    Person,
    PersonRole,
    Territory,
)
from models.uow import UnitOfWork
from notifications.fr import plural
from tiflow.spreadsheet.bulk import (
    Values,
    Writes,
    defaults,
    read_rows,
    table_of,
    versioned_update,
)
from tiflow.spreadsheet.cells import fold, split_refs
from tiflow.spreadsheet.files import read_raw
from tiflow.spreadsheet.layout import (
    ACTIONS,
    BUDGET,
    FUNDING,
    INDICATORS,
    MILESTONES,
    ORGANISATIONS,
    PEOPLE,
    PREFERENCES,
    TERRITORY,
    Sheet,
)
from tiflow.spreadsheet.preferences import check_preferences, write_preferences
from tiflow.spreadsheet.problems import Problems
from tiflow.spreadsheet.progress import NO_PROGRESS, PROGRESS_STEP, Progress
from tiflow.spreadsheet.reading import parse_raw
from tiflow.spreadsheet.records import (
    ActionRecord,
    FundingRecord,
    OrganisationRecord,
    PlanFile,
    Record,
)

_CODE_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-")


class Change(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


# Past participles, feminine when the noun is (une action, une personne, une organisation).
_LABELS = {
    (Change.CREATED, False): "créé",
    (Change.UPDATED, False): "modifié",
    (Change.UNCHANGED, False): "inchangé",
    (Change.CREATED, True): "créée",
    (Change.UPDATED, True): "modifiée",
    (Change.UNCHANGED, True): "inchangée",
}


@dataclass
class EntityChange:
    sheet: str  # Territoire, Organisations, Personnes, Actions
    key: str  # territory code, organisation name, e-mail, action number
    label: str  # what users recognise: the territory's or action's name, the person's name
    change: Change
    details: list[str] = field(default_factory=list)  # French: what changed

    @property
    def change_label(self) -> str:
        return _LABELS[(self.change, self.sheet != "Territoire")]


@dataclass
class ImportReport:
    source: Path
    territory_code: str
    rows: int
    changes: list[EntityChange]
    warnings: list[str]

    def of(self, sheet: Sheet) -> list[EntityChange]:
        return [c for c in self.changes if c.sheet == sheet.title]

    @property
    def actions(self) -> list[EntityChange]:
        return self.of(ACTIONS)

    @property
    def changed(self) -> bool:
        return any(c.change is not Change.UNCHANGED for c in self.changes)

    def count(self, sheet: Sheet, change: Change) -> int:
        return sum(1 for c in self.of(sheet) if c.change is change)

    def summary(self) -> str:
        """« 12 actions (2 créées, 1 modifiée, 9 inchangées) ; 10 personnes (…) ; … »"""
        parts: list[str] = []
        for sheet, noun, feminine in (
            (TERRITORY, "territoire", False),
            (ORGANISATIONS, "organisation", True),
            (PEOPLE, "personne", True),
            (ACTIONS, "action", True),
            (PREFERENCES, "préférence", True),
        ):
            rows = self.of(sheet)
            if not rows:
                continue
            counts = [
                plural(n, label, label + "s")
                for change in Change
                if (n := self.count(sheet, change))
                for label in [_LABELS[(change, feminine)]]
            ]
            parts.append(f"{plural(len(rows), noun, noun + 's')} ({', '.join(counts)})")
        return " ; ".join(parts) or "fichier vide"


def import_plan(
    uow: UnitOfWork,
    source: Path,
    *,
    territory: str | None = None,
    progress: Progress = NO_PROGRESS,
) -> ImportReport:
    """Check `source` entirely, then write it into the unit of work (the caller commits).

    Raises InvalidInput listing every problem (sheet, row, column), and writes nothing, if any
    row is wrong; TiflowError if the file cannot be read at all.
    """
    # Its few reference cycles (openpyxl's workbook) are collected once the collector is back
    # on (`models.collector`).
    with collector_paused():
        return _import_plan(uow, source, territory, progress)


def _import_plan(
    uow: UnitOfWork, source: Path, territory: str | None, progress: Progress
) -> ImportReport:
    raw = read_raw(source, progress)
    plan = parse_raw(raw, progress)
    problems = raw.problems
    code = _territory_code(uow, plan, territory, problems)
    snapshot = _Snapshot.load(uow, code)
    _Checker(plan, snapshot, problems).run()
    if problems:
        raise InvalidInput(problems.texts())
    writer = _Writer(uow, plan, snapshot, code, progress, source)
    try:
        changes = writer.run()
    except sa.exc.IntegrityError as error:
        raise TiflowError(
            "L'import a été refusé par la base de données (une ligne à supprimer ou à modifier"
            f" est encore utilisée ailleurs) ; rien n'a été enregistré. Détail : {error.orig}"
        ) from None
    return ImportReport(source, code, plan.row_count(), changes, plan.warnings)


def _territory_code(uow: UnitOfWork, plan: PlanFile, wanted: str | None, problems: Problems) -> str:
    rows = plan.territory or []
    for extra in rows[1:]:
        problems.add(TERRITORY, extra.row, None, "une seule ligne attendue (un fichier = un plan)")
    in_file = rows[0].code if rows and rows[0].ok("code") else None
    if in_file is not None and set(in_file) - _CODE_CHARS:
        problems.add(
            TERRITORY,
            rows[0].row,
            "code",
            f"code « {in_file} » invalide : minuscules sans accents, chiffres et tirets seulement",
        )
    if wanted and in_file and wanted != in_file:
        problems.add(
            TERRITORY,
            rows[0].row,
            "code",
            f"le fichier décrit le territoire « {in_file} », pas « {wanted} » (territoire"
            " demandé) : corrigez l'un ou l'autre",
        )
    code = wanted or in_file
    if code:
        return code
    known = uow.repo.territories()
    if len(known) == 1:
        return known[0].code
    listed = ", ".join(t.code for t in known) or "aucun pour l'instant"
    raise TiflowError(
        "Indiquez le territoire du plan : remplissez la feuille « Territoire » du fichier ou"
        f" donnez son code (--territoire). Territoires en base : {listed}."
    )


@dataclass
class _Snapshot:
    """What the database holds for the territory, loaded in a few queries."""

    code: str
    territory: Territory | None
    organisations: list[Organisation]
    people: dict[str, Person]  # by e-mail
    roles: dict[int, set[Any]]  # person id -> roles
    actions: dict[str, Values]  # by number, as plain rows (see `bulk.py`)

    @classmethod
    def load(cls, uow: UnitOfWork, code: str) -> _Snapshot:
        session = uow.session
        territory = session.exec(select(Territory).where(Territory.code == code)).first()
        if territory is None:
            return cls(code, None, [], {}, {}, {})
        tid = territory.id
        organisations = list(
            session.exec(select(Organisation).where(Organisation.territory_id == tid)).all()
        )
        people = {
            p.email.lower(): p
            for p in session.exec(select(Person).where(Person.territory_id == tid)).all()
        }
        roles: dict[int, set[Any]] = defaultdict(set)
        for role in session.exec(
            select(PersonRole)
            .join(Person, col(Person.id) == col(PersonRole.person_id))
            .where(Person.territory_id == tid)
        ).all():
            roles[role.person_id].add(role.role)
        table = table_of(ActionSheet)
        actions = {
            a["number"]: a
            for a in read_rows(uow, sa.select(table).where(table.c.territory_id == tid))
        }
        return cls(code, territory, organisations, people, roles, actions)


class _OrgIndex:
    """Organisations by name or short name (accents and case aside), file rows over database."""

    def __init__(self, snapshot: _Snapshot, rows: Sequence[OrganisationRecord]) -> None:
        self.names: dict[str, str] = {}  # fold(name) -> name as written
        entries: dict[str, tuple[str, str]] = {}  # fold(name) -> (name, short name)
        for org in snapshot.organisations:
            entries[fold(org.name)] = (org.name, org.short_name or "")
        for row in rows:
            if row.ok("name") and row.name:
                short = (
                    row.short_name
                    if row.has("short_name")
                    else entries.get(fold(row.name), ("", ""))[1]
                )
                entries[fold(row.name)] = (row.name, short)
        self.keys: dict[str, set[str]] = defaultdict(set)  # any fold(name or short) -> fold(name)
        for key, (name, short) in entries.items():
            self.names[key] = name
            self.keys[key].add(key)
            if short:
                self.keys[fold(short)].add(key)

        self._found: dict[str, set[str]] = {}  # the same names come back on every row

    def find(self, ref: str) -> set[str]:
        found = self._found.get(ref)
        if found is None:
            found = self._found[ref] = self.keys.get(fold(ref), set())
        return found

    def known(self, ref: str) -> bool:
        return bool(self.find(ref))


class _Checker:
    """Checks across rows and against the database; every finding goes to `problems`."""

    def __init__(self, plan: PlanFile, snapshot: _Snapshot, problems: Problems) -> None:
        self.plan, self.snapshot, self.problems = plan, snapshot, problems
        self.orgs = _OrgIndex(snapshot, plan.organisations or [])
        self.emails = set(snapshot.people) | {
            p.email for p in plan.people or [] if p.ok("email") and p.email
        }
        self.numbers = {a.number for a in plan.actions if a.ok("number") and a.number}

    def run(self) -> None:
        if self.snapshot.territory is None and not self.plan.territory:
            self.problems.add(
                TERRITORY,
                None,
                None,
                f"le territoire « {self.snapshot.code} » n'existe pas encore : ajoutez une feuille"
                " « Territoire » (code, nom) pour le créer",
            )
        self._organisations()
        self._people()
        self._actions()
        self._children()
        check_preferences(self.plan.preferences or [], self.emails, self.problems, self._duplicates)

    def _org_ref(self, sheet: Sheet, record: Record, key: str, ref: str) -> None:
        found = self.orgs.find(ref)
        if not found:
            self.problems.add(
                sheet,
                record.row,
                key,
                f"organisation « {ref} » inconnue : ni dans la feuille Organisations ni en base",
            )
        elif len(found) > 1:
            names = " ; ".join(sorted(self.orgs.names[k] for k in found))
            self.problems.add(sheet, record.row, key, f"« {ref} » est ambigu : il désigne {names}")

    def _duplicates(
        self,
        sheet: Sheet,
        rows: Iterable[Record],
        key: Callable[[Any], Any],
        column: str,
        what: Callable[[Any], str],
    ) -> None:
        first: dict[Any, int] = {}
        for row in rows:
            value = key(row)
            if value is None:
                continue
            if value in first:
                self.problems.add(
                    sheet, row.row, column, f"{what(row)} en double (déjà ligne {first[value]})"
                )
            else:
                first[value] = row.row

    def _organisations(self) -> None:
        rows = self.plan.organisations or []
        self._duplicates(
            ORGANISATIONS,
            rows,
            lambda r: fold(r.name) if r.ok("name") and r.name else None,
            "name",
            lambda r: f"organisation « {r.name} »",
        )
        for row in rows:
            if row.ok("short_name") and row.short_name and len(self.orgs.find(row.short_name)) > 1:
                others = sorted(
                    self.orgs.names[k]
                    for k in self.orgs.find(row.short_name)
                    if k != fold(row.name)
                )
                self.problems.add(
                    ORGANISATIONS,
                    row.row,
                    "short_name",
                    f"sigle « {row.short_name} » déjà utilisé par {' ; '.join(others)}",
                )

    def _people(self) -> None:
        rows = self.plan.people or []
        self._duplicates(
            PEOPLE,
            rows,
            lambda r: r.email if r.ok("email") and r.email else None,
            "email",
            lambda r: f"adresse {r.email}",
        )
        for row in rows:
            if row.has("organisation") and row.organisation:
                self._org_ref(PEOPLE, row, "organisation", row.organisation)

    def _actions(self) -> None:
        rows = self.plan.actions
        self._duplicates(
            ACTIONS,
            rows,
            lambda r: r.number if r.ok("number") and r.number else None,
            "number",
            lambda r: f"numéro d'action {r.number}",
        )
        for row in rows:
            if row.has("pilot") and row.pilot and row.ok("pilot") and row.pilot not in self.emails:
                self.problems.add(
                    ACTIONS,
                    row.row,
                    "pilot",
                    f"pilote inconnu « {row.pilot} » : ajoutez cette personne à la feuille"
                    " Personnes (ou vérifiez l'adresse)",
                )
            if row.has("partners") and row.ok("partners"):
                refs = [r for item in row.partners for r in split_refs(item, self.orgs.known)]
                for ref in refs:
                    self._org_ref(ACTIONS, row, "partners", ref)
            if (
                row.start_date
                and row.end_date
                and row.ok("start_date", "end_date")
                and row.end_date < row.start_date
            ):
                self.problems.add(
                    ACTIONS,
                    row.row,
                    "end_date",
                    f"l'action {row.number} finit le {row.end_date:%d/%m/%Y}, avant son début"
                    f" le {row.start_date:%d/%m/%Y}",
                )
            existing = self.snapshot.actions.get(row.number)
            if existing is not None and row.state is not None and row.state != existing["state"]:
                current = State(existing["state"])
                self.problems.add(
                    ACTIONS,
                    row.row,
                    "state",
                    f"l'action {row.number} est « {current.label} » ; l'import ne change pas l'état"
                    f" d'une action existante (« {row.state.label} » demandé). Les changements"
                    " d'état passent par les flux tiflow (décision de COPIL, financement,"
                    " démarrage, clôture) ; laissez la cellule vide ou remettez"
                    f" « {current.label} »",
                )

    def _children(self) -> None:
        def funder_key(r: FundingRecord) -> object:
            found = self.orgs.find(r.funder)
            return (tuple(sorted(found)), r.year) if len(found) == 1 else None

        sheets: list[
            tuple[Sheet, Sequence[Any], Callable[[Any], object], str, Callable[[Any], str]]
        ] = [
            (
                MILESTONES,
                self.plan.milestones or [],
                lambda r: fold(r.title),
                "title",
                lambda r: f"jalon « {r.title} » de l'action {r.action}",
            ),
            (
                INDICATORS,
                self.plan.indicators or [],
                lambda r: fold(r.name),
                "name",
                lambda r: f"indicateur « {r.name} » de l'action {r.action}",
            ),
            (
                BUDGET,
                self.plan.budget or [],
                lambda r: (r.year, r.kind),
                "kind",
                lambda r: f"budget {r.kind.label.lower()} {r.year} de l'action {r.action}",
            ),
            (
                FUNDING,
                self.plan.funding or [],
                funder_key,
                "funder",
                lambda r: f"financement {r.funder} {r.year} de l'action {r.action}",
            ),
        ]
        for sheet, rows, key, column, what in sheets:
            for row in rows:
                if row.ok("action") and row.action and row.action not in self.numbers:
                    self.problems.add(
                        sheet,
                        row.row,
                        "action",
                        f"action « {row.action} » absente de la feuille Actions",
                    )
            keys = [c.key for c in sheet.columns if c.required]
            self._duplicates(sheet, rows, _child_key(key, keys), column, what)
        for row in self.plan.funding or []:
            if row.ok("funder") and row.funder:
                self._org_ref(FUNDING, row, "funder", row.funder)


def _child_key(key: Callable[[Any], object], required: list[str]) -> Callable[[Any], object]:
    def child_key(row: Any) -> object:
        if not row.ok(*required):
            return None
        own = key(row)
        return None if own is None else (row.action, own)

    return child_key


Row = TypeVar("Row", bound=Record)


class _Writer:
    """Applies a checked plan; returns what changed, row by row."""

    def __init__(
        self,
        uow: UnitOfWork,
        plan: PlanFile,
        snapshot: _Snapshot,
        code: str,
        progress: Progress,
        source: Path,
    ) -> None:
        self.uow, self.session, self.source = uow, uow.session, source
        self.plan, self.snapshot, self.code, self.progress = plan, snapshot, code, progress
        self.now = clock.now()
        self.changes: list[EntityChange] = []
        self.writes = Writes()
        self.milestones = _by_action(plan.milestones)
        self.indicators = _by_action(plan.indicators)
        self.budget = _by_action(plan.budget)
        self.funding = _by_action(plan.funding)

    def run(self) -> list[EntityChange]:
        territory = self._territory()
        assert territory.id is not None
        self.tid = territory.id
        orgs = self._organisations()
        self.orgs = _OrgIndex(self.snapshot, self.plan.organisations or [])
        self.org_ids = {fold(o.name): o.id for o in orgs}
        people = self._people()
        self.person_ids = {email: p.id for email, p in people.items()}
        self._actions()
        self.uow.flush()
        self._preferences(people)
        return self.changes

    def _preferences(self, people: dict[str, Person]) -> None:
        rows = self.plan.preferences or []
        actor = f"import du fichier « {self.source.name} »"
        for row, person, choice, changed in write_preferences(self.uow, rows, people, actor=actor):
            self.changes.append(
                EntityChange(
                    PREFERENCES.title,
                    f"{row.email} {row.category.value}",
                    f"{person.full_name} : {row.category.label}",
                    Change.UPDATED if changed else Change.UNCHANGED,
                    [choice.describe()] if changed else [],
                )
            )

    # -- helpers --------------------------------------------------------------------------

    def _set(self, obj: object, record: Record, sheet: Sheet, fields: dict[str, Any]) -> list[str]:
        """Assign the fields whose column is present and whose value differs; return headers."""
        changed: list[str] = []
        for key, value in fields.items():
            if record.has(key) and getattr(obj, _attr(key)) != value:
                setattr(obj, _attr(key), value)
                changed.append(sheet.header(key).lower())
        return changed

    def _org_id(self, ref: str) -> int:
        (key,) = self.orgs.find(ref)
        org_id = self.org_ids[key]
        assert org_id is not None
        return org_id

    # -- top level ------------------------------------------------------------------------

    def _territory(self) -> Territory:
        rows = self.plan.territory or []
        territory = self.snapshot.territory
        if territory is None:
            row = rows[0]
            territory = Territory(
                code=self.code,
                name=row.name,
                department=row.department or None,
                region=row.region or None,
                is_example=row.is_example,
            )
            self.session.add(territory)
            self.uow.flush()
            self.changes.append(EntityChange("Territoire", self.code, row.name, Change.CREATED))
            return territory
        if rows:
            row = rows[0]
            changed = self._set(
                territory,
                row,
                TERRITORY,
                {
                    "name": row.name,
                    "department": row.department or None,
                    "region": row.region or None,
                    "is_example": row.is_example,
                },
            )
            change = Change.UPDATED if changed else Change.UNCHANGED
            self.changes.append(
                EntityChange("Territoire", self.code, territory.name, change, changed)
            )
        return territory

    def _organisations(self) -> list[Organisation]:
        by_name = {fold(o.name): o for o in self.snapshot.organisations}
        for row in self.plan.organisations or []:
            org = by_name.get(fold(row.name))
            if org is None:
                org = Organisation(
                    territory_id=self.tid,
                    name=row.name,
                    short_name=row.short_name or None,
                    kind=row.kind,
                    is_funder=row.is_funder,
                )
                self.session.add(org)
                by_name[fold(row.name)] = org
                self.changes.append(
                    EntityChange("Organisations", row.name, row.name, Change.CREATED)
                )
                continue
            changed = self._set(
                org,
                row,
                ORGANISATIONS,
                {
                    "name": row.name,
                    "short_name": row.short_name or None,
                    "kind": row.kind,
                    "is_funder": row.is_funder,
                },
            )
            change = Change.UPDATED if changed else Change.UNCHANGED
            self.changes.append(EntityChange("Organisations", row.name, row.name, change, changed))
        self.uow.flush()
        return list(by_name.values())

    def _people(self) -> dict[str, Person]:
        people = dict(self.snapshot.people)
        new_roles: list[tuple[Person, frozenset[Any]]] = []
        for row in self.plan.people or []:
            person = people.get(row.email)
            org_id = self._org_id(row.organisation) if row.organisation else None
            if person is None:
                person = Person(
                    territory_id=self.tid,
                    full_name=row.full_name,
                    email=row.email,
                    organisation_id=org_id,
                    position=row.position or None,
                )
                self.session.add(person)
                people[row.email] = person
                new_roles.append((person, row.roles))
                self.changes.append(
                    EntityChange("Personnes", row.email, row.full_name, Change.CREATED)
                )
                continue
            changed = self._set(
                person,
                row,
                PEOPLE,
                {
                    "full_name": row.full_name,
                    "organisation": org_id,
                    "position": row.position or None,
                },
            )
            assert person.id is not None
            if row.has("roles"):
                current = self.snapshot.roles.get(person.id, set())
                for role in current - row.roles:
                    self.session.delete(self.session.get_one(PersonRole, (person.id, role)))
                for role in row.roles - current:
                    self.session.add(PersonRole(person_id=person.id, role=role))
                if current != set(row.roles):
                    changed.append("rôles")
            change = Change.UPDATED if changed else Change.UNCHANGED
            self.changes.append(
                EntityChange("Personnes", row.email, row.full_name, change, changed)
            )
        self.uow.flush()
        for person, roles in new_roles:
            assert person.id is not None
            self.session.add_all(PersonRole(person_id=person.id, role=r) for r in roles)
        return people

    def _actions(self) -> None:
        """Actions and their children, compared as plain rows and written a table at a time."""
        self.progress.phase("Enregistrement des actions", len(self.plan.actions))
        entries: list[tuple[ActionRecord, bool, EntityChange, Values]] = []
        created: list[Values] = []
        for row in self.plan.actions:
            fields = self._action_fields(row)
            existing = self.snapshot.actions.get(row.number)
            if existing is None:
                values = {
                    **_NEW_ACTION,
                    "territory_id": self.tid,
                    "number": row.number,
                    "title": row.title,
                    "axis": row.axis,
                    "state": row.state or State.DRAFT,
                    "created_at": self.now,
                    "updated_at": self.now,
                }
                values.update({_attr(k): v for k, v in fields.items() if row.has(k)})
                created.append(values)
                entry = EntityChange("Actions", row.number, row.title, Change.CREATED)
            else:
                values = {"id": existing["id"], "version": existing["version"]}
                values.update({_attr(k): existing[_attr(k)] for k in fields})
                changed = _assign(values, row, ACTIONS, fields)
                change = Change.UPDATED if changed else Change.UNCHANGED
                entry = EntityChange("Actions", row.number, row.title, change, changed)
            entries.append((row, existing is None, entry, values))
            self.changes.append(entry)
        if created:
            # Inserted now: their children need their ids.
            self.session.execute(table_of(ActionSheet).insert(), created)
        ids = (
            self._action_ids()
            if created
            else {n: a["id"] for n, a in self.snapshot.actions.items()}
        )
        have = _Children.load(self.uow, self.tid) if self.snapshot.actions else _Children()
        updated: list[tuple[str, Values]] = []
        done = 0
        for row, is_new, entry, values in entries:
            details = self._children(row, ids[row.number], have)
            if not is_new:
                if details and entry.change is Change.UNCHANGED:
                    entry.change = Change.UPDATED  # a child changed: the aggregate's version too
                if entry.change is Change.UPDATED:
                    entry.details.extend(details)
                    values["updated_at"] = self.now
                    updated.append((row.number, values))
            done += 1
            if done % PROGRESS_STEP == 0:
                self.progress.advance(PROGRESS_STEP)
        self.progress.advance(done % PROGRESS_STEP)
        versioned_update(self.uow, ActionSheet, updated)
        self.writes.apply(self.uow)

    def _action_fields(self, row: ActionRecord) -> dict[str, Any]:
        return {
            "title": row.title,
            "description": row.description,
            "axis": row.axis,
            "pilot": self.person_ids[row.pilot] if row.pilot else None,
            "firm_commitment": row.firm_commitment,
            "priority": row.priority,
            "start_date": row.start_date,
            "end_date": row.end_date,
        }

    def _action_ids(self) -> dict[str, int]:
        table = table_of(ActionSheet)
        query = sa.select(table.c.number, table.c.id).where(table.c.territory_id == self.tid)
        return {number: aid for number, aid in self.session.execute(query)}

    # -- children of an action ------------------------------------------------------------

    def _children(self, row: ActionRecord, aid: int, have: _Children) -> list[str]:
        details: list[str] = []
        if row.has("partners"):
            wanted = {
                self._org_id(ref)
                for item in row.partners
                for ref in split_refs(item, self.orgs.known)
            }
            current = have.partners.get(aid, set())
            links = self.writes.of(ActionPartner)
            links.deletes += [{"action_id": aid, "organisation_id": o} for o in current - wanted]
            links.inserts += [{"action_id": aid, "organisation_id": o} for o in wanted - current]
            if wanted != current:
                details.append("partenaires")
        milestones = self.milestones.get(row.number)
        if milestones is not None:
            details += self._sync(
                Milestone,
                have.milestones.get(aid, []),
                milestones,
                lambda m: fold(m["title"]),
                lambda r: fold(r.title),
                lambda r: {"action_id": aid, "title": r.title, "due_date": r.due_date},
                lambda m, r: _assign(
                    m,
                    r,
                    MILESTONES,
                    {"title": r.title, "due_date": r.due_date, "done_on": r.done_on},
                ),
                ("jalons", False),
            )
        indicators = self.indicators.get(row.number)
        if indicators is not None:
            details += self._sync(
                Indicator,
                have.indicators.get(aid, []),
                indicators,
                lambda i: fold(i["name"]),
                lambda r: fold(r.name),
                lambda r: {"action_id": aid, "name": r.name, "target": r.target},
                lambda i, r: _assign(
                    i,
                    r,
                    INDICATORS,
                    {
                        "name": r.name,
                        "unit": r.unit,
                        "target": r.target,
                        "actual": r.actual,
                        "measured_on": r.measured_on,
                    },
                ),
                ("indicateurs", False),
            )
        budget = self.budget.get(row.number)
        if budget is not None:
            details += self._sync(
                BudgetLine,
                have.budget.get(aid, []),
                budget,
                lambda b: (b["year"], b["kind"]),
                lambda r: (r.year, r.kind),
                lambda r: {"action_id": aid, "year": r.year, "kind": r.kind, "amount": r.amount},
                lambda b, r: _assign(b, r, BUDGET, {"amount": r.amount}),
                ("lignes de budget", True),
            )
        funding = self.funding.get(row.number)
        if funding is not None:
            details += self._sync(
                Funding,
                have.funding.get(aid, []),
                funding,
                lambda f: (f["funder_id"], f["year"]),
                lambda r: (self._org_id(r.funder), r.year),
                lambda r: {
                    "action_id": aid,
                    "funder_id": self._org_id(r.funder),
                    "year": r.year,
                    "updated_at": self.now,
                },
                self._update_funding,
                ("financements", False),
            )
        return details

    def _update_funding(self, f: Values, r: FundingRecord) -> list[str]:
        changed = _assign(
            f,
            r,
            FUNDING,
            {
                "requested": r.requested,
                "granted": r.granted,
                "paid": r.paid,
                "dossier_due": r.dossier_due,
                "dossier_filed_on": r.dossier_filed_on,
                "decision_expected": r.decision_expected,
                "payment_expected": r.payment_expected,
                "decision_date": r.decision_date,
                "convention_ref": r.convention_ref or None,
            },
        )
        if changed:
            f["updated_at"] = self.now
        return changed

    def _sync(
        self,
        model: type[SQLModel],
        existing: list[Values],
        rows: list[Row],
        key_of_model: Callable[[Values], Any],
        key_of_row: Callable[[Row], Any],
        create: Callable[[Row], Values],
        update: Callable[[Values, Row], list[str]],
        noun: tuple[str, bool],
    ) -> list[str]:
        """Make `existing` match `rows`: update by key, create the new, delete the missing."""
        writes = self.writes.of(model)
        pool: dict[Any, list[Values]] = defaultdict(list)
        for values in existing:
            pool[key_of_model(values)].append(values)
        created = updated = deleted = 0
        for row in rows:
            matches = pool.get(key_of_row(row))
            if matches:
                values = matches.pop(0)
                if update(values, row):
                    writes.updates.append(values)
                    updated += 1
            else:
                values = {**_NEW_ROW[model], **create(row)}
                update(values, row)  # the fields `create` did not set
                writes.inserts.append(values)
                created += 1
        for leftovers in pool.values():
            for values in leftovers:
                writes.deletes.append({"id": values["id"]})
                deleted += 1
        plural, feminine = noun
        counts = [
            f"{n} {verb}{'e' if feminine else ''}{'s' if n > 1 else ''}"
            for n, verb in ((created, "ajouté"), (updated, "modifié"), (deleted, "supprimé"))
            if n
        ]
        return [f"{plural} : {', '.join(counts)}"] if counts else []


# Record keys whose model attribute has another name.
_ATTRS = {"pilot": "pilot_id", "organisation": "organisation_id"}


def _attr(key: str) -> str:
    return _ATTRS.get(key, key)


def _assign(values: Values, record: Record, sheet: Sheet, fields: dict[str, Any]) -> list[str]:
    """`_Writer._set` for a row held as a dict: assign the fields whose column is present and
    whose value differs; return their headers."""
    changed: list[str] = []
    for key, value in fields.items():
        attr = _ATTRS.get(key, key)
        if values[attr] != value and record.has(key):  # the cheaper test first: most are equal
            values[attr] = value
            changed.append(sheet.header(key).lower())
    return changed


# What a new row holds before the file's values: the models' own defaults, read once.
_NEW_ACTION = defaults(ActionSheet)
_NEW_ROW: dict[type[SQLModel], Values] = {
    model: defaults(model) for model in (Milestone, Indicator, BudgetLine, Funding)
}


def _by_action(rows: list[Row] | None) -> dict[str, list[Row]]:
    """The rows of a child sheet grouped by action number (an action absent from the sheet is
    absent from the result: its rows in the database are left alone)."""
    groups: dict[str, list[Row]] = defaultdict(list)
    for row in rows or []:
        groups[row.action].append(row)  # type: ignore[attr-defined]
    return groups


@dataclass
class _Children:
    """The territory's action children by action id, one query per table (in id order)."""

    milestones: dict[int, list[Values]] = field(default_factory=dict)
    indicators: dict[int, list[Values]] = field(default_factory=dict)
    budget: dict[int, list[Values]] = field(default_factory=dict)
    funding: dict[int, list[Values]] = field(default_factory=dict)
    partners: dict[int, set[int]] = field(default_factory=dict)

    @classmethod
    def load(cls, uow: UnitOfWork, territory_id: int) -> _Children:
        actions = table_of(ActionSheet)

        def of_territory(model: type[SQLModel]) -> sa.Select[Any]:
            table = table_of(model)
            # `updated_at` is set, never compared (a changed row gets the import's time): not
            # read, it saves decoding a timestamp per funding line.
            return (
                sa.select(*(c for c in table.c if c.name != "updated_at"))
                .join(actions, actions.c.id == table.c.action_id)
                .where(actions.c.territory_id == territory_id)
            )

        def grouped(model: type[SQLModel]) -> dict[int, list[Values]]:
            groups: dict[int, list[Values]] = defaultdict(list)
            for values in read_rows(uow, of_territory(model).order_by(table_of(model).c.id)):
                groups[values["action_id"]].append(values)
            return groups

        partners: dict[int, set[int]] = defaultdict(set)
        for link in read_rows(uow, of_territory(ActionPartner)):
            partners[link["action_id"]].add(link["organisation_id"])
        return cls(
            grouped(Milestone), grouped(Indicator), grouped(BudgetLine), grouped(Funding), partners
        )
