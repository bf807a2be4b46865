"""How each person wants tiflow to reach them: the rules, as pure functions, and their tables.

For each *category* of message (deadline reminders, « Où en êtes-vous ? » nudges, COPIL
digests, notices after decisions, budget) a person chooses a *frequency* — immediately,
daily, weekly on a chosen day, or never where never is allowed — the hour of sending
(Europe/Paris) and the channel (e-mail, or an apprise channel the operator configured).
Without a preference row a person gets everything immediately by e-mail: tiflow's behaviour
before preferences existed.

Messages that carry an obligation — the convocation to a COPIL (the first digest of a meeting
a member receives), an escalation to the coordinator — always go, immediately:
:func:`obligation_reason` is the one rule, with the French reason shown to the person.

Every change is appended to ``person_preference_change`` (who, when, through what), so the
coordinator setting a preference on a person's request is recorded.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from models import clock
from models.errors import TiflowError
from models.types import UTCDateTime, enum_type

EMAIL = "email"  # the channel: e-mail to the person's own address
DEFAULT_HOUR = 8  # Paris hour of the daily and weekly sendings, when none is chosen


class Category(StrEnum):
    DEADLINES = "deadlines"
    NUDGES = "nudges"
    DIGESTS = "digests"
    NOTICES = "notices"
    BUDGET = "budget"

    @property
    def label(self) -> str:
        return CATEGORY_LABELS[self]


CATEGORY_LABELS = {
    Category.DEADLINES: "rappels d'échéance",
    Category.NUDGES: "« Où en êtes-vous ? »",
    Category.DIGESTS: "synthèses avant COPIL",
    Category.NOTICES: "avis après une décision",
    Category.BUDGET: "budget consolidé",
}


class Frequency(StrEnum):
    IMMEDIATELY = "immediately"
    DAILY = "daily"
    WEEKLY = "weekly"
    NEVER = "never"

    @property
    def label(self) -> str:
        return FREQUENCY_LABELS[self]


FREQUENCY_LABELS = {
    Frequency.IMMEDIATELY: "tout de suite",
    Frequency.DAILY: "une fois par jour",
    Frequency.WEEKLY: "une fois par semaine",
    Frequency.NEVER: "jamais",
}

WEEKDAYS = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")

# Outbox kinds (notifications.outbox rows) and the category whose preference they follow.
# Kinds absent from this table (escalation, sign-in links…) are not the person's to choose.
KIND_CATEGORY = {
    "reminder": Category.DEADLINES,  # a message holding only nudges follows NUDGES
    "digest": Category.DIGESTS,
    "next-steps": Category.NOTICES,
    "revision": Category.NOTICES,
    "rejection": Category.NOTICES,
    "deferral": Category.NOTICES,
    "kickoff": Category.NOTICES,
    "budget": Category.BUDGET,
}

ESCALATION_REASON = (
    "L'alerte au chargé de mission signale une échéance dépassée que le pilote n'a pas"
    " tenue : la suivre fait partie de sa mission, elle ne se désactive pas et part"
    " aussitôt."
)
CONVOCATION_REASON = (
    "La convocation au COPIL (la première synthèse d'une réunion, avec l'ordre du jour et"
    " l'invitation) engage les membres : elle part toujours, aussitôt. Les synthèses"
    " suivantes suivent votre choix."
)


def obligation_reason(kind: str, *, first_of_meeting: bool = False) -> str | None:
    """Why a message cannot be switched off or delayed (French), or None when it can.

    ``first_of_meeting``: a digest that is the first the person gets for its COPIL, i.e.
    the convocation."""
    if kind == "escalation":
        return ESCALATION_REASON
    if kind == "digest" and first_of_meeting:
        return CONVOCATION_REASON
    return None


def category_of(kind: str, *, only_nudges: bool = False) -> Category | None:
    """The category a message of outbox ``kind`` follows (None: not switchable)."""
    category = KIND_CATEGORY.get(kind)
    if category is Category.DEADLINES and only_nudges:
        return Category.NUDGES
    return category


@dataclass(frozen=True, slots=True)
class Choice:
    """One person's choice for one category (plain facts, no database)."""

    frequency: Frequency = Frequency.IMMEDIATELY
    weekday: int | None = None  # 0 = lundi … 6 = dimanche, for WEEKLY
    hour: int = DEFAULT_HOUR  # Europe/Paris, for DAILY and WEEKLY
    channel: str = EMAIL

    def describe(self) -> str:
        """« une fois par semaine, le vendredi à 8 h » (French)."""
        if self.frequency is Frequency.WEEKLY:
            day = WEEKDAYS[self.weekday or 0]
            return f"{self.frequency.label}, le {day} à {self.hour} h"
        if self.frequency is Frequency.DAILY:
            return f"{self.frequency.label}, à {self.hour} h"
        return self.frequency.label

    def describe_all(self) -> str:
        """:meth:`describe`, then the channel when it is not e-mail (French)."""
        if self.channel == EMAIL:
            return self.describe()
        return f"{self.describe()}, sur le canal «\u00a0{self.channel}\u00a0»"


IMMEDIATELY = Choice()


class PreferenceError(TiflowError):
    """A preference that cannot be recorded (French message naming the field)."""


def check_choice(category: Category, choice: Choice, channels: frozenset[str]) -> None:
    """Refuse, in French, a choice that cannot be stored. ``channels``: the apprise tags the
    operator configured that a person may choose, besides e-mail."""
    where = f"Préférence « {category.label} »"
    if not 0 <= choice.hour <= 23:
        raise PreferenceError(f"{where} : l'heure d'envoi va de 0 à 23 (reçu {choice.hour}).")
    if choice.frequency is Frequency.WEEKLY and choice.weekday not in range(7):
        raise PreferenceError(
            f"{where} : une fois par semaine, il faut choisir le jour (lundi … dimanche)."
        )
    if choice.channel != EMAIL and choice.channel not in channels:
        known = ", ".join(["e-mail", *sorted(channels)])
        raise PreferenceError(
            f"{where} : canal « {choice.channel} » inconnu (canaux possibles : {known})."
        )


def send_at(choice: Choice, due: datetime) -> datetime | None:
    """When a message that became due at ``due`` (aware) goes out under ``choice``, as aware
    UTC; None when it does not go at all (never).

    Immediately: at ``due``. Daily: the next ``hour`` o'clock (Paris) at or after ``due``.
    Weekly: the next chosen weekday at ``hour`` o'clock at or after ``due``. Computed on the
    Paris calendar, so a daylight-saving change never moves the hour."""
    if choice.frequency is Frequency.NEVER:
        return None
    if choice.frequency is Frequency.IMMEDIATELY:
        return due
    local = due.astimezone(clock.PARIS)
    day = local.date()
    for _ in range(8):
        slot = _at(day, choice.hour)
        on_day = choice.frequency is Frequency.DAILY or day.weekday() == choice.weekday
        if on_day and slot >= due:
            return slot
        day += timedelta(days=1)
    raise AssertionError("unreachable: a week always holds the chosen day")


def earliest_send(choices: list[Choice], due: datetime, obligation: str | None) -> datetime | None:
    """When a message holding items of several categories (one choice each) goes out: the
    earliest of their instants; None when every one of them is « never ». A message that
    carries an obligation goes at ``due`` whatever the choices."""
    if obligation is not None or not choices:
        return due
    instants = [at for choice in choices if (at := send_at(choice, due)) is not None]
    return min(instants) if instants else None


def _at(day: date, hour: int) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=clock.PARIS).astimezone(UTC)


def weekday_of(text: str) -> int:
    """« vendredi » → 4 (French, case and accents as typed)."""
    wanted = text.strip().lower()
    if wanted not in WEEKDAYS:
        raise PreferenceError(
            f"Jour « {text} » inconnu : écrivez {', '.join(WEEKDAYS[:-1])} ou {WEEKDAYS[-1]}."
        )
    return WEEKDAYS.index(wanted)


def frequency_of(text: str) -> Frequency:
    """« hebdomadaire », « chaque semaine », « weekly »… → Frequency (French first)."""
    wanted = text.strip().lower()
    for frequency, words in FREQUENCY_WORDS.items():
        if wanted in words:
            return frequency
    raise PreferenceError(
        f"Fréquence « {text} » inconnue : écrivez immédiat, quotidien, hebdomadaire ou jamais."
    )


FREQUENCY_WORDS = {
    Frequency.IMMEDIATELY: {"immédiat", "immediat", "tout de suite", "immediately"},
    Frequency.DAILY: {"quotidien", "chaque jour", "une fois par jour", "daily"},
    Frequency.WEEKLY: {"hebdomadaire", "chaque semaine", "une fois par semaine", "weekly"},
    Frequency.NEVER: {"jamais", "never", "désabonné"},
}


def category_from(text: str) -> Category:
    wanted = text.strip().lower()
    for category in Category:
        if wanted in {category.value, category.label.lower()} | CATEGORY_WORDS[category]:
            return category
    names = ", ".join(sorted(w for words in CATEGORY_WORDS.values() for w in words))
    raise PreferenceError(f"Type de message « {text} » inconnu : écrivez {names}.")


CATEGORY_WORDS = {
    Category.DEADLINES: {"rappels", "échéances"},
    Category.NUDGES: {"relances"},
    Category.DIGESTS: {"synthèses", "copil"},
    Category.NOTICES: {"avis", "décisions"},
    Category.BUDGET: {"budget"},
}


# ---------------------------------------------------------------------------------------------
# Tables


class PersonPreference(SQLModel, table=True):
    """The current choice of one person for one category (no row: immediately, e-mail)."""

    __tablename__ = "person_preference"
    __table_args__ = (sa.UniqueConstraint("person_id", "category"),)
    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    category: Category = Field(sa_type=enum_type(Category))
    frequency: Frequency = Field(sa_type=enum_type(Frequency))
    weekday: int | None = None
    hour: int = DEFAULT_HOUR
    channel: str = Field(default=EMAIL, max_length=64)
    updated_at: datetime = Field(default_factory=clock.now, sa_type=UTCDateTime)

    def choice(self) -> Choice:
        return Choice(Frequency(self.frequency), self.weekday, self.hour, self.channel)


class PersonPreferenceChange(SQLModel, table=True):
    """Append-only history of preference changes: who, when, through which entrance."""

    __tablename__ = "person_preference_change"
    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    category: Category = Field(sa_type=enum_type(Category))
    frequency: Frequency = Field(sa_type=enum_type(Frequency))
    weekday: int | None = None
    hour: int = DEFAULT_HOUR
    channel: str = Field(default=EMAIL, max_length=64)
    at: datetime = Field(default_factory=clock.now, sa_type=UTCDateTime)
    actor: str = Field(max_length=200, description="qui a fait le changement")
    via: str = Field(max_length=32, description="web, cli, import, désabonnement…")


# ---------------------------------------------------------------------------------------------
# Absence and delegation


@dataclass(frozen=True, slots=True)
class Away:
    """A recorded absence (plain facts): from ``starts_on`` to ``ends_on`` included; during
    it, reminders go to ``delegate_id`` (saying on whose behalf), or wait for the return when
    ``hold`` is set or nobody was named."""

    person_id: int
    starts_on: date
    ends_on: date
    delegate_id: int | None = None
    hold: bool = False

    @property
    def back_on(self) -> date:
        return self.ends_on + timedelta(days=1)

    @property
    def delegates(self) -> bool:
        return self.delegate_id is not None and not self.hold


def away_on(absences: list[Away], day: date) -> Away | None:
    """The absence covering ``day`` (the latest recorded, if several overlap)."""
    found = [a for a in absences if a.starts_on <= day <= a.ends_on]
    return found[-1] if found else None


def check_absence(away: Away) -> None:
    if away.ends_on < away.starts_on:
        raise PreferenceError(
            "Absence : la date de retour (au) doit suivre la date de départ (du)"
            f" — reçu du {away.starts_on:%d/%m/%Y} au {away.ends_on:%d/%m/%Y}."
        )
    if away.delegate_id is not None and away.delegate_id == away.person_id:
        raise PreferenceError("Absence : on ne peut pas se désigner soi-même comme suppléant.")


def resume_at(away: Away, hour: int = DEFAULT_HOUR) -> datetime:
    """When reminders held during ``away`` go out: the day of return, at ``hour`` (Paris)."""
    return _at(away.back_on, hour)


class PersonAbsence(SQLModel, table=True):
    """An absence and its delegate; ``cancelled_at`` ends it early (rows are never deleted)."""

    __tablename__ = "person_absence"
    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    starts_on: date
    ends_on: date
    delegate_id: int | None = Field(default=None, foreign_key="person.id")
    hold: bool = Field(default=False, description="attendre le retour plutôt que déléguer")
    created_at: datetime = Field(default_factory=clock.now, sa_type=UTCDateTime)
    actor: str = Field(max_length=200)
    cancelled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)

    def away(self) -> Away:
        return Away(self.person_id, self.starts_on, self.ends_on, self.delegate_id, self.hold)


class PersonAbsenceChange(SQLModel, table=True):
    """Append-only history of absences cancelled or shortened: who, when, through what."""

    __tablename__ = "person_absence_change"
    id: int | None = Field(default=None, primary_key=True)
    absence_id: int = Field(foreign_key="person_absence.id", index=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    at: datetime = Field(default_factory=clock.now, sa_type=UTCDateTime)
    actor: str = Field(max_length=200, description="qui a fait le changement")
    via: str = Field(max_length=32, description="web, cli…")
    previous_ends_on: date
    ends_on: date | None = Field(default=None, description="nouveau dernier jour ; vide : annulée")


def end_absence_check(away: Away, today: date, ends_on: date | None) -> None:
    """Refuse, in French, an absence that cannot be cancelled (``ends_on`` None) or shortened
    to end on ``ends_on``: one that is over, or a date that does not shorten it."""
    period = f"du {away.starts_on:%d/%m/%Y} au {away.ends_on:%d/%m/%Y}"
    if away.ends_on < today:
        raise PreferenceError(f"Absence {period} : elle est déjà terminée.")
    if ends_on is None:
        return
    if ends_on >= away.ends_on:
        raise PreferenceError(
            f"Absence {period} : pour l'écourter, choisissez un dernier jour avant le"
            f" {away.ends_on:%d/%m/%Y} (reçu {ends_on:%d/%m/%Y}) ; pour la prolonger,"
            " enregistrez une nouvelle absence."
        )
    if ends_on < away.starts_on:
        raise PreferenceError(
            f"Absence {period} : le dernier jour ne peut précéder le premier"
            f" (reçu {ends_on:%d/%m/%Y}) ; pour la supprimer, annulez-la."
        )


# ---------------------------------------------------------------------------------------------
# The signed one-click unsubscribe link (RFC 8058)

_UNSUBSCRIBE = b"tiflow-unsubscribe-v1:"


def unsubscribe_token(secret: bytes, person_id: int, category: Category) -> str:
    """``<person id>.<category>.<signature>``: lets its holder change that one preference
    without signing in, and nothing else. Signed with the web application's secret key; it
    does not expire (a link in an old e-mail must still work) and stops working if the key
    changes."""
    body = f"{person_id}.{category.value}"
    return f"{body}.{_signature(secret, body)}"


def read_unsubscribe_token(secret: bytes, token: str) -> tuple[int, Category] | None:
    """The (person id, category) a genuine token names, or None."""
    person, _, rest = token.partition(".")
    category, _, signature = rest.partition(".")
    body = f"{person}.{category}"
    if not person.isdigit() or category not in {c.value for c in Category}:
        return None
    if not hmac.compare_digest(signature, _signature(secret, body)):
        return None
    return int(person), Category(category)


def _signature(secret: bytes, body: str) -> str:
    digest = hmac.new(secret, _UNSUBSCRIBE + body.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode()
