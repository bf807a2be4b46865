"""What the lifecycle services share: finding the territory and the action, naming the actor,
instants and French dates, and the seam tests use to make two runs overlap.

The use cases (`flows.usecases.proposals`, `.copil`, `.funding`, `.progress`) follow one shape:
read and check *everything* first, collecting every problem into one `InvalidInput` (French,
naming the field or decision at fault), then write inside the caller's unit of work. They never
commit: the caller (a flow, the CLI, a test) commits, then publishes `uow.events`.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlmodel import select

from models import clock
from models.errors import InvalidInput, NotFound
from models.lifecycle import DROPPED_OUT
from models.tables import ActionSheet, Organisation, Territory
from models.uow import UnitOfWork
from models.vocabulary import Role

PARIS = ZoneInfo("Europe/Paris")
ACTOR_MAX = 200  # transition_record.actor length

# Closed without being carried out: nothing more can be recorded on them.

# Test seam: called by every service once its reads and checks are done, just before its first
# write. Tests set it (e.g. to a threading.Barrier's wait) to make two runs overlap exactly.
before_write: Callable[[], object] | None = None


def entering_write_phase() -> None:
    if before_write is not None:
        before_write()


def now() -> datetime:
    return clock.now()


aware = clock.aware  # naive instants are Paris wall-clock time; the result is UTC


def paris_date(value: datetime) -> date:
    return aware(value).astimezone(PARIS).date()


def short_date(value: datetime | date) -> str:
    """``25/01/2024`` (calendar day in Europe/Paris for instants)."""
    day = paris_date(value) if isinstance(value, datetime) else value
    return day.strftime("%d/%m/%Y")


def short_datetime(value: datetime) -> str:
    """``25/01/2024 à 09 h 30`` in Europe/Paris."""
    local = aware(value).astimezone(PARIS)
    return f"{local:%d/%m/%Y} à {local:%H} h {local:%M}"


def resolve_territory(uow: UnitOfWork, code: str | None) -> Territory:
    """The territory named by `code`; when none is given, the only one in the database."""
    if code and code.strip():
        return uow.repo.territory(code.strip())
    territories = list(uow.repo.territories())
    if len(territories) == 1:
        return territories[0]
    if not territories:
        raise NotFound("Aucun territoire dans la base : importez d'abord un plan d'actions.")
    codes = ", ".join(t.code for t in territories)
    raise InvalidInput([f"Territoire : précisez-le, la base en contient plusieurs ({codes})."])


def find_action(uow: UnitOfWork, territory: Territory, number: str) -> ActionSheet:
    return uow.repo.action(territory.code, normalise_number(number))


def normalise_number(number: str) -> str:
    """``fa-7``, ``FA 07`` → ``FA-07``; anything else is kept as typed (trimmed, upper case)."""
    text = number.strip().upper().replace(" ", "-")
    prefix, _, digits = text.rpartition("-")
    if prefix == "FA" and digits.isdigit():
        return f"FA-{int(digits):02d}"
    return text


def actor_name(uow: UnitOfWork, territory: Territory, recorded_by: str | None) -> str:
    """Who did it, for the history: the name given, else the territory's coordinator."""
    if recorded_by and recorded_by.strip():
        return recorded_by.strip()[:ACTOR_MAX]
    assert territory.id is not None
    coordinators = uow.repo.people_with_role(territory.id, Role.COORDINATOR)
    if coordinators:
        return coordinators[0].full_name[:ACTOR_MAX]
    return "coordination"


def require_alive(action: ActionSheet, what: str) -> str | None:
    """A French problem if nothing can be recorded on the action any more, else None."""
    if action.state in DROPPED_OUT:
        return (
            f"L'action {action.number} est « {action.state.label} » : on ne peut plus y"
            f" enregistrer {what}."
        )
    return None


def fold(text: str) -> str:
    """Case- and accent-insensitive form of a name: « État » and « etat » match."""
    decomposed = unicodedata.normalize("NFKD", text.strip().casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def find_organisation(uow: UnitOfWork, territory: Territory, name: str) -> Organisation | None:
    """The territory's organisation with this name or short name (case and accents ignored)."""
    wanted = fold(name)
    if not wanted:
        return None
    for organisation in uow.session.exec(
        select(Organisation).where(Organisation.territory_id == territory.id)
    ).all():
        if wanted in (fold(organisation.name), fold(organisation.short_name or "")):
            return organisation
    return None
