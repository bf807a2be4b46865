"""The « Préférences » sheet: how each person wants tiflow to reach them, one row per person
and type of message.

Checked with the rest of the file (a problem names sheet, row and column; nothing is written
if any row is wrong) and written through the preferences use case
(:func:`flows.usecases.preferences.set_preference`, ``via="import"``), so an imported change
is in the person's history like one made on the web, and moves their pending messages the same
way. A row equal to the stored choice changes nothing; a type of message without a row keeps its
stored choice. The « Canal » column names e-mail or one of the operator's « canal-… » channels;
left empty (or absent, in a file of an older layout) it keeps the person's channel.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from flows.usecases.preferences import offered_channels, set_preference
from models.preferences import DEFAULT_HOUR, EMAIL, Choice, Frequency
from models.tables import Person
from models.uow import UnitOfWork
from notifications.preferences import load_choices
from tiflow.spreadsheet.layout import PREFERENCES, Sheet
from tiflow.spreadsheet.problems import Problems
from tiflow.spreadsheet.records import PreferenceRecord, Record

SHEET_TITLE = PREFERENCES.title

Duplicates = Callable[
    [Sheet, Iterable[Record], Callable[[Any], Any], str, Callable[[Any], str]], None
]


def check_preferences(
    rows: Sequence[PreferenceRecord],
    emails: set[str],
    problems: Problems,
    duplicates: Duplicates,
    channels: frozenset[str] | None = None,
) -> None:
    """Every reference and rule of the sheet; ``emails``: the people of the file or base;
    ``channels``: the ``canal-…`` one may choose (default: those the operator configured)."""
    offered = offered_channels() if channels is None else channels
    duplicates(
        PREFERENCES,
        rows,
        lambda r: (r.email, r.category) if r.ok("email", "category") and r.email else None,
        "category",
        lambda r: f"préférence « {r.category.label} » de {r.email}",
    )
    for row in rows:
        if row.ok("email") and row.email and row.email not in emails:
            problems.add(
                PREFERENCES,
                row.row,
                "email",
                f"personne « {row.email} » absente de la feuille Personnes et de la base",
            )
        weekly = row.ok("frequency") and row.frequency is Frequency.WEEKLY
        if weekly and row.ok("weekday") and row.weekday is None:
            problems.add(
                PREFERENCES,
                row.row,
                "weekday",
                "une fois par semaine : indiquez le jour (lundi … dimanche)",
            )
        chosen = row.channel if row.ok("channel") else None
        if chosen is not None and chosen != EMAIL and chosen not in offered:
            known = ", ".join(["e-mail", *sorted(offered)])
            problems.add(
                PREFERENCES,
                row.row,
                "channel",
                f"canal « {chosen} » inconnu de l'exploitant (canaux possibles : {known})",
            )


def write_preferences(
    uow: UnitOfWork,
    rows: Sequence[PreferenceRecord],
    people: dict[str, Person],
    *,
    actor: str,
) -> list[tuple[PreferenceRecord, Person, Choice, bool]]:
    """Record each row that differs from the stored choice; returns (row, person, choice,
    changed) for the report."""
    ids = [p.id for p in people.values() if p.id is not None]
    stored = load_choices(uow.session, ids) if rows else {}
    done = []
    for row in rows:
        person = people[row.email]
        assert person.id is not None
        current = stored.get((person.id, row.category), Choice())
        choice = _choice(row, row.channel or current.channel)
        changed = choice != _comparable(current)
        if changed:
            # The stored channel stays possible even if the operator has since removed it.
            channels = offered_channels() | ({current.channel} - {EMAIL})
            set_preference(
                uow, person, row.category, choice, actor=actor, via="import", channels=channels
            )
        done.append((row, person, choice, changed))
    return done


def _choice(row: PreferenceRecord, channel: str) -> Choice:
    weekly = row.frequency is Frequency.WEEKLY
    hour = row.hour if row.hour is not None else DEFAULT_HOUR
    return Choice(row.frequency, row.weekday if weekly else None, hour, channel)


def _comparable(choice: Choice) -> Choice:
    """A stored choice as a row of the sheet would say it (a weekday only when weekly)."""
    weekly = choice.frequency is Frequency.WEEKLY
    return Choice(
        Frequency(choice.frequency), choice.weekday if weekly else None, choice.hour, choice.channel
    )
