"""One year of the Grand Est Touraine example (January 2024 → January 2025), played through the
real flows with a simulated clock: what `tiflow demo` runs.

Every simulated month is one Prefect flow run, « Mois du plan d'actions » (``mois-2024-02``: 13
runs holding the year's 128 days), that plays its days in order, each announced in the run's log
(« Journée du lundi 12 février 2024 »), then the day's steps in order. A step runs the flows a
coordinator or a schedule runs (`flows/*.py`), their bodies inside the month's run: their tasks,
logs and correlation id are the month's, and their summaries (the artifacts each would publish
on its own) make one artifact of the month, day by day, with the timeline's lines. One flow run
per month rather than one per flow, day or week: each flow run costs a fixed 0.1–0.3 s here (six
requests to the server, one of them sometimes refused as busy by its SQLite database and retried
2 s later), more than most days' work. The simulated instant is passed as the forms' ``at``
(history rows, notes, funding decisions) and the sweeps' ``as_of`` (reminders, digests, budget):
proposals, the first COPIL of 25 January 2024 validating the plan and the 2024 budget, funding
(most actions fully funded, FA-03 and FA-10 left *validée* with funding missing, FA-06 funded by
override), starts, progress reports, the COPIL digests at J-10 and J-3, a revision request (FA-09)
and a deferral (FA-10), an abandon (FA-12), a late milestone (FA-01, due 15/11/2024, done
05/12/2024) reminded to its pilot then escalated to the coordinator, two completions, and the
consolidation of the 2024 budget on 2 January 2025 with its e-mail.

**Reminder sweeps.** In production the reminder flow runs every day at 08:00; 365 runs would
take minutes (a flow run costs 0.2–0.3 s here). The demo runs it every fourth Monday at 08:00
(14 sweeps) with ``catch_up_days=27``: each run sends what fell due since the previous one — the
latest reminder of each deadline, grouped in one e-mail per person — so no deadline is
forgotten, and the escalations to the coordinator go out on time. Each sweep runs the flow
« rappels-echeances » in its day's run. A sweep also enqueues the « Où en êtes-vous ? » due
before the next one, each for its own day (6 weeks after the pilot's last note, exactly); the
outbox's delivery round (« envoi-messages-en-attente », every 15 minutes in production) runs
on each day a message waits for, at its hour, so they go out on their day.

**Funding** goes as it does with real funders: the pilots file their dossiers (which stops
the filing reminders), each funder decides for every year of its dossier at once (a
multi-year convention: one funding row per year, as the budget lines), pays a 30 % advance
on signature, and the balance of the year's tranche on the pilot's statement of expenses,
a few days before the payment date (FA-04's Région payment in two parts).

**One clock.** Each step sets the one clock (`models.clock`) to its simulated instant, so
everything the flows write — history and outbox rows, ``Date:`` headers, ``.eml`` file names,
the invitations' DTSTAMP and SEQUENCE, the budget's "consolidé le" — belongs to the year.
Deterministic: the same steps, dates, e-mails and file names at every run (run ids aside).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import groupby
from pathlib import Path
from typing import Any, Protocol, TypeVar

import sqlalchemy as sa
from prefect import get_run_logger
from prefect.artifacts import create_markdown_artifact
from sqlalchemy.engine import Engine

from flows._shared import Summary, artifact_key, summaries_gathered
from flows.after_copil import after_copil
from flows.budget import BudgetParameters, BudgetRunResult, consolidate_budget
from flows.copil import hold_copil, schedule_copil
from flows.digest import copil_digest
from flows.forms import (
    AbandonForm,
    BudgetLineForm,
    CopilDecisionsForm,
    CopilScheduleForm,
    DecisionForm,
    FundingForm,
    IndicatorValueForm,
    MilestoneDoneForm,
    MilestoneForm,
    Outcome,
    ProgressForm,
    ProposalForm,
    StepForm,
)
from flows.funding import record_funding
from flows.outbox import deliver_outbox
from flows.progress import abandon_action, complete_action, report_progress, start_action
from flows.proposals import propose_action
from flows.reminders import deadline_reminders
from flows.usecases.after_copil import record_minutes
from flows.usecases.bus import unit_of_work
from flows.usecases.reminders import ESCALATION, ReminderSettings
from flows.usecases.service import short_date
from models import clock
from models.deadlines import ACTION_END, FUNDING_KINDS, MILESTONE
from models.lifecycle import State
from models.money import format_eur
from models.outbox import OutboxItem, OutboxMessage, OutboxStatus
from models.tables import ActionSheet, Funding, Milestone, Organisation
from models.uow import UnitOfWork
from models.vocabulary import BudgetKind
from notifications.fr import format_date
from tiflow.example import ACTIONS, TERRITORY_CODE
from tiflow.spreadsheet.progress import NO_PROGRESS, Progress

T = TypeVar("T")


class Runner(Protocol):
    """How a day runs: a real Prefect flow run, or its code without Prefect (bench/demo.py)."""

    def __call__(self, flow: Callable[..., T], /, *args: Any, **kwargs: Any) -> T: ...


START = date(2024, 1, 1)  # a Monday: the first sweep
LAST_SWEEP = date(2024, 12, 30)
SWEEP_EVERY = timedelta(weeks=4)
MONTH_FLOW = "Mois du plan d'actions"
BUDGET_YEAR = 2024
BUDGET_RUN = datetime(2025, 1, 2, 7, 0)  # first working day of January 2025, 07:00
SITUATION = date(2024, 12, 31)  # date of situation of the late actions in the budget
ADVANCE = Decimal("0.30")  # the advance funders usually pay when the convention is signed

# The demo's sweeps: every fourth Monday, catching up the 27 days since the previous one.
SWEEPS = ReminderSettings(catch_up_days=SWEEP_EVERY.days - 1)

AMBOISE = "Hôtel de ville d'Amboise"
CHATEAU_RENAULT = "Communauté de communes du Castelrenaudais, Château-Renault"

LATE_ACTION, LATE_MILESTONE = "FA-01", "Installation des démonstrateurs"  # due 15/11/2024
COPIL_1_VALIDATED = (
    "FA-01",
    "FA-02",
    "FA-03",
    "FA-04",
    "FA-05",
    "FA-06",
    "FA-07",
    "FA-08",
    "FA-12",
)


def validated_budget(numbers: Sequence[str], year: int) -> Decimal:
    """The year's budget lines of `numbers` in the example: what the first COPIL validates."""
    return sum(
        (
            Decimal(amount)
            for action in ACTIONS
            if action.number in numbers
            for (line_year, _), amount in action.budget.items()
            if line_year == year
        ),
        Decimal(0),
    )


@dataclass(frozen=True)
class Happening:
    """A line of the timeline. Reminder runs (`kind` "rappels") are summed up per month and
    their `text` names the escalations, if any; funding records (`kind` "financement") of one
    action in one month make one line. `emails`: the outbox rows the step created, per kind
    (the notices a COPIL decision or a funding sets off, the digests, the reminders…)."""

    day: date
    text: str
    kind: str = ""
    emails: Counter[str] = field(default_factory=Counter)
    number: str = ""  # the action, for funding records
    detail: str = ""  # « Région 20 000,00 € », for funding records

    def line(self) -> str:
        """The line on its own, as the month's artifact shows it (the terminal's timeline
        makes one line of an action's funding records in a month)."""
        if self.kind == "financement":
            return f"{self.number} : financement {self.detail}{self.text}"
        return self.text


@dataclass(frozen=True)
class SentEmail:
    """An e-mail worth opening, with the simulated day it went out."""

    day: date
    kind: str
    key: str  # the outbox key: with the address, it names the .eml file
    address: str
    subject: str


@dataclass
class YearReport:
    territory_code: str
    happenings: list[Happening] = field(default_factory=list)
    flow_runs: int = 0  # one per simulated month with something to play
    days_played: int = 0  # the simulated days with steps, each inside its month's run
    flows_played: int = 0  # the coordinator's and scheduled flows run inside them
    sweeps: int = 0
    budget: BudgetRunResult | None = None
    notable: list[SentEmail] = field(default_factory=list)


@dataclass(frozen=True)
class Step:
    at: datetime  # simulated instant, Europe/Paris wall-clock time
    play: Callable[[Year], str | Happening | None]  # runs flows; what the timeline shows


def sweep_days() -> list[date]:
    days, day = [], START
    while day <= LAST_SWEEP:
        days.append(day)
        day += SWEEP_EVERY
    return days


class Year:
    """Plays the steps in order, counting flow runs and recording the timeline."""

    def __init__(
        self, engine: Engine, progress: Progress = NO_PROGRESS, runner: Runner | None = None
    ) -> None:
        self.engine = engine
        self.progress = progress
        self.runner = runner or run_in_prefect
        # The real runs share one API client (see `one_prefect_client`); a runner without
        # Prefect (bench/demo.py) needs none.
        self.client_kept = one_prefect_client if runner is None else nullcontext
        self.report = YearReport(TERRITORY_CODE)
        self.copils: dict[str, int] = {}  # "copil-1" -> id
        self.today = START
        self.step_start = 0  # the last outbox row before the current step
        self.days: dict[date, list[Step]] = {}
        self.played: set[date] = set()  # the days already played

    # -- running ---------------------------------------------------------------------------

    def play(self, steps: Sequence[Step]) -> YearReport:
        sweeps = [
            Step(datetime.combine(day, datetime.min.time()).replace(hour=8), _sweep_on(day))
            for day in sweep_days()
        ]
        # Same instant: reminders (08:00) before the other steps; otherwise the given order.
        agenda = sorted([*sweeps, *steps], key=lambda step: step.at)
        self.progress.phase("Une année du plan d'actions (flux Prefect)", len(agenda))
        self.days = {day: list(group) for day, group in groupby(agenda, lambda s: s.at.date())}
        month_flow = simulated_month(self)
        # The one clock shows each step's simulated instant: every timestamp the flows write
        # (history, outbox, Date: headers, .eml names, .ics, "consolidé le") is in the year.
        with clock.frozen(agenda[0].at), self.client_kept():
            # Months are found as they are played: a day's delivery round may add a later day.
            while (month := self.next_month()) is not None:
                self.runner(month_flow, month)
                self.report.flow_runs += 1
        self.report.notable = self.notable_emails()
        return self.report

    def play_month(self, month: date) -> dict[str, list[str]]:
        """The month's days in order, inside the month's flow run, each announced in its log;
        publishes the month's artifact (`month_markdown`) and returns the timeline's lines,
        per day."""
        logger = get_run_logger()
        shown: dict[str, list[str]] = {}
        summaries: dict[date, list[Summary]] = {}
        while (day := self.next_day(month)) is not None:
            logger.info("Journée du %s", format_date(day))
            with summaries_gathered() as summaries[day]:
                shown[day.isoformat()] = self.play_day(day)
            self.played.add(day)
            self.report.days_played += 1
            self.deliveries_after(day)
        create_markdown_artifact(
            month_markdown(month, shown, summaries),
            key=artifact_key("demo", month.isoformat()[:7]),
            description=f"Démonstration : {month_label(month)}, journée par journée",
        )
        return shown

    def next_day(self, month: date) -> date | None:
        """The first day of `month` with steps not played yet."""
        days = [d for d in self.days if month_of(d) == month and d not in self.played]
        return min(days, default=None)

    def next_month(self) -> date | None:
        """The month (its first day) of the first day with steps not played yet."""
        first = min((d for d in self.days if d not in self.played), default=None)
        return None if first is None else month_of(first)

    def play_day(self, day: date) -> list[str]:
        """The day's steps in order; returns its timeline lines."""
        shown_today = []
        for step in self.days[day]:
            clock.set_to(step.at)
            self.today = day
            self.step_start = self.last_outbox_id()
            shown = step.play(self)
            if isinstance(shown, str):
                shown = Happening(self.today, shown)
            # Whatever the step put in the outbox, whichever flow or transaction did it.
            sent = self.emails_since(self.step_start)
            if shown is None and sent:
                shown = Happening(self.today, "")
            if shown is not None:
                self.report.happenings.append(replace(shown, emails=sent))
                shown_today.append(shown.line())
            self.progress.advance()
        return shown_today

    def run(self, flow: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`flow`'s body, inside the month's flow run (a refused step raises its French error:
        a demo bug)."""
        result = in_this_run(flow, *args, **kwargs)
        self.report.flows_played += 1
        return result

    def deliveries_after(self, today: date) -> None:
        """A delivery round on each later day of the year a pending message waits for (a
        nudge enqueued ahead), at the hour it waits for: what production's every-15-minutes
        delivery would send then: the new days are played in their month."""
        m = OutboxMessage.__table__.c  # type: ignore[attr-defined]
        with self.engine.connect() as conn:
            waiting = conn.execute(
                sa.select(m.next_attempt_at)
                .where(m.status == OutboxStatus.PENDING.value)
                .distinct()
            ).scalars()
            instants = sorted(
                paris_instant(w).replace(tzinfo=None, second=0, microsecond=0) for w in waiting
            )
        last = max(self.days)
        for instant in instants:
            day = instant.date()
            if not today < day <= last:
                continue
            steps = self.days.setdefault(day, [])
            if any(s.play is _deliver and s.at == instant for s in steps):
                continue
            steps.append(Step(instant, _deliver))
            steps.sort(key=lambda step: step.at)

    def deliver(self) -> None:
        """The outbox's delivery round (what waited for the simulated instant)."""
        self.run(deliver_outbox)

    def last_outbox_id(self) -> int:
        m = OutboxMessage.__table__.c  # type: ignore[attr-defined]
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.max(m.id))).scalar() or 0)

    def emails_since(self, last_id: int) -> Counter[str]:
        """Outbox rows (one per recipient) created after `last_id`, per kind."""
        m = OutboxMessage.__table__.c  # type: ignore[attr-defined]
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(m.kind, sa.func.count()).where(m.id > last_id).group_by(m.kind)
            )
            return Counter({str(kind): int(n) for kind, n in rows})

    # -- the flows, as the timeline tells them ---------------------------------------------

    def sweep(self, day: date) -> Happening:
        """The reminder run of a Monday, every fourth week."""
        self.run(deadline_reminders, as_of=day, reminders=SWEEPS)
        self.report.sweeps += 1
        escalated = self.escalated(self.step_start)
        text = "alerte au chargé de mission : " + " ; ".join(escalated) if escalated else ""
        return Happening(day, text, "rappels")

    def escalated(self, since_id: int) -> list[str]:
        """What the run's escalation e-mails are about, per action: « FA-01 jalon « … »
        (échéance 15/11) », « FA-06 dossier ANCT, dossier Région »."""
        m = OutboxMessage.__table__.c  # type: ignore[attr-defined]
        i = OutboxItem.__table__.c  # type: ignore[attr-defined]
        with unit_of_work(self.engine) as uow:
            items = uow.session.execute(
                sa.select(i.ref_kind, i.ref_id, i.item_key)
                .join(OutboxMessage, m.id == i.message_id)
                .where(m.id > since_id, m.kind == ESCALATION)
                .order_by(i.item_key)
            ).all()
            found: dict[str, dict[str, None]] = {}
            for ref_kind, ref_id, key in items:
                if key.split(":")[3].startswith("E+"):
                    number, what = self._subject(uow, ref_kind, ref_id)
                    found.setdefault(number, {})[what] = None
        return [f"{number} {', '.join(whats)}" for number, whats in sorted(found.items())]

    @staticmethod
    def _subject(uow: UnitOfWork, ref_kind: str, ref_id: int) -> tuple[str, str]:
        session = uow.session
        if ref_kind == MILESTONE:
            milestone = session.get_one(Milestone, ref_id)
            action = session.get_one(ActionSheet, milestone.action_id)
            return action.number, (
                f"jalon « {milestone.title} » (échéance {milestone.due_date:%d/%m})"
            )
        if ref_kind == ACTION_END:
            action = session.get_one(ActionSheet, ref_id)
            return action.number, f"fin prévue le {action.end_date:%d/%m}"
        if ref_kind in FUNDING_KINDS:
            funding = session.get_one(Funding, ref_id)
            action = session.get_one(ActionSheet, funding.action_id)
            funder = session.get_one(Organisation, funding.funder_id)
            what = {
                "funding_dossier": "dossier",
                "funding_decision": "décision",
                "funding_payment": "versement",
            }[ref_kind]
            return action.number, f"{what} {funder.short_name or funder.name}"
        return ref_kind, str(ref_id)

    def notable_emails(self) -> list[SentEmail]:
        """The e-mails to open first: the first COPIL digest to the coordinator, everything
        about FA-01's late milestone (the pilot's reminders, the coordinator's alert), and the
        budget."""
        m = OutboxMessage.__table__.c  # type: ignore[attr-defined]
        i = OutboxItem.__table__.c  # type: ignore[attr-defined]
        a = ActionSheet.__table__.c  # type: ignore[attr-defined]
        ms = Milestone.__table__.c  # type: ignore[attr-defined]
        late = (
            sa.select(i.message_id)
            .join(Milestone, ms.id == i.ref_id)
            .join(ActionSheet, a.id == ms.action_id)
            .where(i.ref_kind == MILESTONE, a.number == LATE_ACTION, ms.title == LATE_MILESTONE)
        )
        with self.engine.connect() as conn:
            first_digest = conn.execute(
                sa.select(sa.func.min(m.id)).where(m.kind == "digest")
            ).scalar()
            rows = conn.execute(
                sa.select(m.kind, m.key, m.address, m.subject, m.created_at)
                .where(
                    sa.or_(
                        m.id.in_(late),
                        m.kind == "budget",
                        sa.and_(m.kind == "digest", m.key == _key_of(conn, first_digest)),
                    ),
                    m.address != "",
                )
                .order_by(m.id)
            ).all()
        coordinator = "claire.moreau@grand-est-touraine.example"
        return [
            SentEmail(
                paris_day(r.created_at),
                r.kind,
                r.key,
                r.address,
                r.subject,
            )
            for r in rows
            if r.kind != "digest" or r.address == coordinator
        ]

    def schedule(self, name: str, held_at: datetime, place: str) -> str:
        info = self.run(schedule_copil, CopilScheduleForm(held_at=held_at, place=place))
        self.copils[name] = info.copil_id
        agenda = ", ".join(i.number for i in info.agenda) or "vide pour l'instant"
        return (
            f"COPIL du {held_at:%d/%m/%Y} planifié (n° {info.copil_id}), {place},"
            f" {len(info.members)} membres ; ordre du jour : {agenda}"
        )

    def propose(self, at: datetime, *forms: ProposalForm) -> str:
        new: list[str] = []
        revised: list[str] = []
        copil: datetime | None = None
        for form in forms:
            result = self.run(propose_action, form.model_copy(update={"at": at}))
            first = result.from_state is State.DRAFT
            (new if first else revised).append(result.number)
            copil = result.next_copil_at
        where = f"au COPIL du {short_date(copil)}" if copil else "(pas encore de COPIL planifié)"
        parts = []
        if new:
            plural = "s" if len(new) > 1 else ""
            parts.append(f"{len(new)} fiche{plural} proposée{plural} {where} : {', '.join(new)}")
        if revised:
            parts.append(f"{', '.join(revised)} révisée et proposée à nouveau {where}")
        return " ; ".join(parts)

    def digest(self, day: date, held: datetime) -> str | None:
        result = self.run(copil_digest, as_of=day)
        if result.get("unchanged"):
            return (
                f"synthèse J-{(held.date() - day).days} du COPIL du {held:%d/%m/%Y} non envoyée :"
                " rien n'a changé depuis la précédente"
            )
        if not result["copils"]:
            return None
        return (
            f"synthèse J-{(held.date() - day).days} du COPIL du {held:%d/%m/%Y} envoyée aux"
            f" {result['enqueued']} membres (ordre du jour, invitation .ics, tableau CSV)"
        )

    def hold(
        self,
        name: str,
        at: datetime,
        decisions: Sequence[DecisionForm],
        budget_year: int | None = None,
        budget: Decimal | None = None,
    ) -> str:
        form = CopilDecisionsForm(
            copil_id=self.copils[name],
            decisions=list(decisions),
            budget_year=budget_year,
            validated_budget=budget,
            at=at,
        )
        outcome = self.run(hold_copil, form)
        by_outcome: dict[str, list[str]] = {}
        for d in outcome.decisions:
            by_outcome.setdefault(d.outcome.label, []).append(d.number)
        text = f"{outcome.copil.label} : " + " ; ".join(
            f"{label} {', '.join(numbers)}" for label, numbers in by_outcome.items()
        )
        if outcome.validated_budget is not None:
            text += (
                f" ; budget {outcome.budget_year} validé : {format_eur(outcome.validated_budget)}"
            )
        return text

    def after_copil(self, day: date) -> str | None:
        """The « suites-copil » run of a day: records of decisions, minutes reminders."""
        result = self.run(after_copil, as_of=day)
        parts = [
            f"relevé de décisions du {copil} envoyé aux membres et aux pilotes concernés"
            for copil in result["records"]
        ] + [
            f"rappel au chargé de mission : compte rendu du {copil} à enregistrer"
            for copil in result["reminders"]
        ]
        return " ; ".join(parts) or None

    def minutes(self, name: str, text: str) -> str:
        """The coordinator records a COPIL's minutes (as `tiflow copil compte-rendu` does)."""
        with unit_of_work(self.engine) as uow:
            copil = record_minutes(uow, self.copils[name], text)
            held = paris_day(copil.held_at)
            uow.commit()
        return f"compte rendu du COPIL du {held:%d/%m/%Y} enregistré"

    def fund(
        self,
        at: datetime,
        number: str,
        funder: str,
        granted: str,
        *,
        requested: str | None = None,
        convention: str | None = None,
        force_reason: str | None = None,
    ) -> Happening:
        """The funder's decision for every year of its dossier (a multi-year convention grants
        each year's tranche as requested), with the usual advance paid on signature: 30 % of
        the first year's tranche. The rest is paid later (`pay`)."""
        tranches = self._tranches(number, funder)
        total = Decimal(granted)
        asked = sum(tranches.values(), Decimal(0))
        result = moved = None
        for i, (year, tranche) in enumerate(sorted(tranches.items())):
            share = tranche if total == asked else (total if i == 0 else Decimal(0))
            form = FundingForm(
                number=number,
                funder=funder,
                year=year,
                requested=Decimal(requested) if requested and i == 0 else None,
                granted=share,
                paid=(share * ADVANCE).quantize(Decimal(1)) if i == 0 else Decimal(0),
                decision_date=at.date(),
                convention_ref=convention,
                force_reason=force_reason,
                at=at,
            )
            done = self.run(record_funding, form)
            result, moved = done, moved or done.transition
        assert result is not None, f"{number} : pas de dossier {funder} dans l'exemple"
        detail = f"{result.funder} refusé" if total == 0 else f"{result.funder} {format_eur(total)}"
        if moved is not None:
            outcome = " → financée" + (" (forcée, motif à l'historique)" if force_reason else "")
        elif result.missing > 0:
            outcome = f" ; il manque {format_eur(result.missing)}, reste {result.state.label}"
        else:
            outcome = ""
        return Happening(self.today, outcome, "financement", number=number, detail=detail)

    def _tranches(self, number: str, funder: str) -> dict[int, Decimal]:
        """The years of the funder's rows for the action, with their requested amounts."""
        rows = [r for r in self._funding_rows(number) if r.short_name == funder]
        return {r.year: r.requested for r in rows} or {self.today.year: Decimal(0)}

    def _funding_rows(self, number: str) -> list[Any]:
        """The action's funding rows with their funder's short name, in creation order."""
        a = ActionSheet.__table__.c  # type: ignore[attr-defined]
        f = Funding.__table__.c  # type: ignore[attr-defined]
        o = Organisation.__table__.c  # type: ignore[attr-defined]
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    sa.select(o.short_name, f.year, f.requested, f.granted, f.paid)
                    .add_columns(f.dossier_due, f.dossier_filed_on)
                    .join(ActionSheet, a.id == f.action_id)
                    .join(Organisation, o.id == f.funder_id)
                    .where(a.number == number)
                    .order_by(f.id)
                ).all()
            )

    def file_dossiers(self, at: datetime, number: str) -> str:
        """The pilot files the action's funding dossiers (first year): the reminders of their
        filing stop."""
        rows = self._funding_rows(number)
        funders = [(r.short_name, r.year) for r in rows if r.dossier_due and not r.dossier_filed_on]
        for funder, year in funders:
            form = FundingForm(
                number=number, funder=funder, year=year, dossier_filed_on=at.date(), at=at
            )
            self.run(record_funding, form)
        names = ", ".join(funder for funder, _ in funders)
        return f"{number} : dossiers de financement déposés ({names})"

    def pay(self, at: datetime, number: str, funder: str | None = None, amount: str = "") -> str:
        """Payments of the year's tranche: the balance (default) or `amount`."""
        paid = []
        for row in self._funding_rows(number):
            name, year, granted, already = row.short_name, row.year, row.granted, row.paid
            if year != at.year or (funder is not None and name != funder):
                continue
            new = min(already + Decimal(amount), granted) if amount else granted
            if new == already:
                continue
            form = FundingForm(number=number, funder=name, year=year, paid=new, at=at)
            self.run(record_funding, form)
            paid.append(f"{name} {format_eur(new - already)}")
        return f"{number} : versement {', '.join(paid)}"

    def start(self, at: datetime, number: str) -> str:
        result = self.run(start_action, StepForm(number=number, at=at))
        return f"{result.number} démarre ({result.from_state.label} → {result.to_state.label})"

    def complete(self, at: datetime, number: str, note: str) -> str:
        result = self.run(complete_action, StepForm(number=number, reason=note, at=at))
        return f"{result.number} terminée"

    def abandon(self, at: datetime, number: str, reason: str) -> str:
        result = self.run(abandon_action, AbandonForm(number=number, reason=reason, at=at))
        return f"{result.number} abandonnée : {reason}"

    def progress_report(
        self,
        at: datetime,
        number: str,
        note: str,
        milestones: Sequence[tuple[str, date]] = (),
        indicators: Sequence[tuple[str, str]] = (),
    ) -> str:
        form = ProgressForm(
            number=number,
            milestones_done=[MilestoneDoneForm(title=t, done_on=d) for t, d in milestones],
            indicator_values=[
                IndicatorValueForm(name=n, value=Decimal(v), measured_on=at.date())
                for n, v in indicators
            ],
            note=note,
            at=at,
        )
        result = self.run(report_progress, form)
        parts = []
        for title, done in milestones:
            part = f"jalon « {title} » franchi"
            due = self._due_date(number, title)
            if due is not None and due < done:
                part += f" avec {(done - due).days} jours de retard"
            parts.append(part)
        return f"{result.number} : " + (", ".join(parts) if parts else "note de suivi")

    def _due_date(self, number: str, title: str) -> date | None:
        a = ActionSheet.__table__.c  # type: ignore[attr-defined]
        m = Milestone.__table__.c  # type: ignore[attr-defined]
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(m.due_date)
                .join(ActionSheet, a.id == m.action_id)
                .where(
                    a.number == number, a.territory_id == self._territory_id(conn), m.title == title
                )
            ).scalar_one_or_none()

    def _territory_id(self, conn: sa.Connection) -> int:
        from models.tables import Territory

        t = Territory.__table__.c  # type: ignore[attr-defined]
        return int(conn.execute(sa.select(t.id).where(t.code == TERRITORY_CODE)).scalar_one())

    def consolidate(self) -> str:
        params = BudgetParameters(year=BUDGET_YEAR, territory=TERRITORY_CODE, as_of=SITUATION)
        result = self.run(consolidate_budget, params)
        assert isinstance(result, BudgetRunResult)
        self.report.budget = result
        return (
            f"budget {BUDGET_YEAR} consolidé (version {result.version}) : classeur"
            f" {result.files.xlsx.name} écrit et envoyé au chargé de mission"
        )


def run_in_prefect(flow: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """A real flow run (what the demo does for each day)."""
    state: Any = flow(*args, return_state=True, **kwargs)
    result: T = state.result()
    return result


def one_prefect_client() -> AbstractContextManager[Any]:
    """One Prefect API client for all the day runs. Each flow run started outside a client
    context builds its own (an HTTP client with a new SSL context, even for the local
    server's plain HTTP: 20 to 90 ms a run here, the same again to close it); inside one,
    every run uses this one. Nothing else changes: same server, same requests."""
    from prefect.context import SyncClientContext

    return SyncClientContext.get_or_create()


def in_this_run(flow: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`flow`'s body in the current flow run: its tasks, logs and artifacts are the day's."""
    from prefect.states import State as PrefectState

    result: Any = flow.fn(*args, **kwargs)  # type: ignore[attr-defined]
    return result.result() if isinstance(result, PrefectState) else result


def month_of(day: date) -> date:
    return day.replace(day=1)


def month_markdown(
    month: date, shown: dict[str, list[str]], summaries: dict[date, list[Summary]]
) -> str:
    """The month's artifact: for each day, its timeline lines, then the summaries of the
    flows it ran (headings pushed two levels down, under the day's)."""
    lines = [f"# Démonstration : {month_label(month)}", ""]
    for day, gathered in summaries.items():
        lines.append(f"## Journée du {format_date(day)}")
        told = [f"- {text}" for text in shown[day.isoformat()] if text]
        if told:
            lines += ["", *told]
        for summary in gathered:
            lines += ["", *(_pushed_down(line) for line in summary.markdown.splitlines())]
        lines.append("")
    return "\n".join(lines)


def _pushed_down(line: str) -> str:
    return "##" + line if line.startswith("#") else line


def simulated_month(year: Year) -> Callable[[date], dict[str, list[str]]]:
    """The flow « Mois du plan d'actions » of `year`: one run per simulated month with
    something to play (``mois-2024-02``, `month` its first day), which plays its days in
    order, each announced in the run's log by a line « Journée du … », then the day's
    coordinator steps and sweeps: the same flows a coordinator or a schedule runs, their
    bodies in this run (their tasks, logs and correlation id are the month's; their
    summaries are the month's artifact)."""
    from prefect import flow
    from prefect.settings import PREFECT_LOCAL_STORAGE_PATH

    # Its result (the month's timeline lines) is not persisted, as by Prefect's default; saying
    # so, and where it would go (Prefect's local storage, the default without a server
    # block), spares each run three requests asking the server for its default storage.
    @flow(
        name=MONTH_FLOW,
        description="Un mois de l'année de démonstration : ses journées, dans l'ordre, et"
        " les flux de chacune.",
        flow_run_name="mois-{month:%Y-%m}",
        log_prints=True,
        validate_parameters=False,
        persist_result=False,
        result_storage=Path(PREFECT_LOCAL_STORAGE_PATH.value()),
    )
    def mois(month: date) -> dict[str, list[str]]:
        return year.play_month(month)

    return mois


def paris_day(instant: datetime) -> date:
    """The Paris day of a stored instant (UTC; SQLite returns it naive)."""
    return paris_instant(instant).date()


def paris_instant(instant: datetime) -> datetime:
    """A stored instant (UTC; SQLite returns it naive) in Paris."""
    aware = instant if instant.tzinfo is not None else instant.replace(tzinfo=UTC)
    return aware.astimezone(clock.PARIS)


def _deliver(year: Year) -> None:
    year.deliver()


def _digest_on(day: date, held: datetime) -> Callable[[Year], str | None]:
    return lambda y: y.digest(day, held)


def _after_copil_on(day: date) -> Callable[[Year], str | None]:
    return lambda y: y.after_copil(day)


def _sweep_on(day: date) -> Callable[[Year], Happening]:
    return lambda y: y.sweep(day)


def _key_of(conn: sa.Connection, message_id: int | None) -> str | None:
    m = OutboxMessage.__table__.c  # type: ignore[attr-defined]
    return conn.execute(sa.select(m.key).where(m.id == message_id)).scalar()


def at(day: str, hour: int = 10, minute: int = 0) -> datetime:
    """``at("25/01/2024", 12)``: a simulated instant, Paris time."""
    d, m, y = (int(p) for p in day.split("/"))
    return datetime(y, m, d, hour, minute)


def decision(
    number: str, outcome: Outcome, conditions: str = "", comment: str = ""
) -> DecisionForm:
    return DecisionForm(number=number, outcome=outcome, conditions=conditions, comment=comment)


def _proposal(number: str, **fields: Any) -> ProposalForm:
    return ProposalForm(number=number, **fields)


def steps() -> list[Step]:
    """The year, in the order it happened (same-instant steps keep this order)."""
    V, R, A = Outcome.VALIDATED, Outcome.REVISION_REQUESTED, Outcome.DEFERRED
    copil_1 = at("25/01/2024", 9, 30)
    copil_2 = at("20/06/2024", 14)
    copil_3 = at("17/10/2024", 9, 30)
    budget_2024 = validated_budget(COPIL_1_VALIDATED, 2024)
    s: list[Step] = []

    def add(when: datetime, play: Callable[[Year], str | Happening | None]) -> None:
        s.append(Step(when, play))

    def proposals(when: datetime, *numbers: str) -> None:
        add(when, lambda y: y.propose(when, *(_proposal(n) for n in numbers)))

    def fund(when: datetime, number: str, funder: str, granted: str, **kw: Any) -> None:
        add(when, lambda y: y.fund(when, number, funder, granted, **kw))

    def start(when: datetime, number: str) -> None:
        add(when, lambda y: y.start(when, number))

    def file(when: datetime, *numbers: str) -> None:
        for number in numbers:
            add(when, lambda y, n=number: y.file_dossiers(when, n))  # type: ignore[misc]

    def pay(when: datetime, number: str, funder: str | None = None, amount: str = "") -> None:
        add(when, lambda y: y.pay(when, number, funder, amount))

    def report(when: datetime, number: str, note: str, **kw: Any) -> None:
        add(when, lambda y: y.progress_report(when, number, note, **kw))

    def digests(held: datetime) -> None:
        for days in (10, 3):
            day = held.date() - timedelta(days=days)
            when = datetime.combine(day, datetime.min.time()).replace(hour=7, minute=30)
            add(when, _digest_on(day, held))

    def after(held: datetime, name: str, minutes_on: datetime, minutes: str) -> None:
        """The « suites-copil » runs that have something to do (J+1, J+3, J+7 at 08:15), and
        the day the coordinator records the minutes."""
        for days in (1, 3, 7):
            day = held.date() + timedelta(days=days)
            add(
                datetime.combine(day, datetime.min.time()).replace(hour=8, minute=15),
                _after_copil_on(day),
            )
        add(minutes_on, lambda y: y.minutes(name, minutes))

    # January: the first COPIL of phase 2 validates the plan and the 2024 budget.
    add(at("08/01/2024", 9), lambda y: y.schedule("copil-1", copil_1, AMBOISE))
    # dossiers due on 2 January, filed early, « sous réserve de la validation du COPIL »
    file(at("08/01/2024", 11), "FA-04", "FA-06", "FA-08")
    proposals(at("09/01/2024"), "FA-01", "FA-02", "FA-03", "FA-04")
    proposals(at("10/01/2024"), "FA-05", "FA-06", "FA-07", "FA-08")
    proposals(at("11/01/2024"), "FA-09", "FA-12")
    digests(copil_1)
    decisions_1 = [
        decision("FA-01", V, conditions="Bilan d'étape au COPIL d'octobre"),
        *(decision(n, V) for n in COPIL_1_VALIDATED[1:]),
        decision(
            "FA-09",
            R,
            comment="Associer la CC du Castelrenaudais et chiffrer la mise à jour annuelle",
        ),
    ]
    held_1 = at("25/01/2024", 12)
    add(held_1, lambda y: y.hold("copil-1", held_1, decisions_1, 2024, budget_2024))
    after(copil_1, "copil-1", at("26/01/2024", 15), "Plan d'actions et budget 2024 validés.")

    file(at("29/01/2024"), "FA-01", "FA-02", "FA-03", "FA-05", "FA-07", "FA-12")

    # February–April: funding decisions, starts, first milestones; FA-12 is abandoned.
    fund(at("05/02/2024"), "FA-08", "CC TEV", "30000", convention="CONV-2024-001")
    fund(at("06/02/2024"), "FA-06", "ANCT", "60000", convention="ANCT-2024-118")
    fund(at("08/02/2024"), "FA-05", "Région", "20000", convention="CVL-2024-0211")
    fund(at("12/02/2024"), "FA-08", "Région", "20000", convention="CVL-2024-0230")
    start(at("13/02/2024"), "FA-08")
    fund(at("15/02/2024"), "FA-05", "CC Val d'Amboise", "15000")
    start(at("19/02/2024"), "FA-05")
    fund(
        at("20/02/2024"),
        "FA-06",
        "Région",
        "45000",
        convention="CVL-2024-0262",
        force_reason="Les 30 000 € de 2026 seront financés par les cotisations des trois clubs",
    )
    start(at("21/02/2024"), "FA-06")
    report(
        at("26/02/2024"),
        "FA-08",
        "Programme 2024 du Rubixco arrêté : 26 rendez-vous prévus.",
        milestones=[("Programme d'animation annuel", date(2024, 2, 26))],
    )
    fund(at("01/03/2024"), "FA-04", "État", "60000", convention="DETR-2024-37")
    fund(at("04/03/2024"), "FA-01", "Région", "250000", convention="CVL-2024-0301")
    fund(at("05/03/2024"), "FA-02", "Région", "120000", convention="CVL-2024-0305")
    fund(at("06/03/2024"), "FA-07", "État", "50000", convention="DREETS-2024-12")
    fund(at("08/03/2024"), "FA-04", "Région", "60000", convention="CVL-2024-0318")
    fund(at("11/03/2024"), "FA-01", "État", "150000", convention="FNADT-2024-05")
    start(at("11/03/2024", 14), "FA-04")
    fund(at("12/03/2024"), "FA-02", "OPCO 2i", "85000")
    fund(at("13/03/2024"), "FA-07", "OPCO 2i", "40000")
    start(at("14/03/2024"), "FA-02")
    fund(at("18/03/2024"), "FA-01", "CC Castelrenaudais", "140000")
    start(at("20/03/2024"), "FA-01")
    report(
        at("27/03/2024"),
        "FA-05",
        "Semaine de l'industrie : 14 usines ouvertes aux collégiens.",
        milestones=[("Semaine de l'industrie : visites d'usines", date(2024, 3, 25))],
        indicators=[("Élèves ayant visité une usine", "350")],
    )
    report(
        at("28/03/2024"),
        "FA-04",
        "Cartographie des zones blanches remise aux opérateurs.",
        milestones=[("Cartographie des zones blanches", date(2024, 3, 28))],
    )
    report(
        at("02/04/2024"),
        "FA-06",
        "Animatrice recrutée, en poste depuis le 1er avril.",
        milestones=[("Recrutement de l'animateur", date(2024, 4, 1))],
    )
    fund(at("03/04/2024"), "FA-07", "CC TEV", "50000")
    start(at("04/04/2024"), "FA-07")
    fund(at("10/04/2024"), "FA-03", "ANCT", "60000", convention="ANCT-2024-152")
    add(
        at("15/04/2024"),
        lambda y: y.abandon(
            at("15/04/2024"),
            "FA-12",
            "les PME sont orientées vers le dispositif national de diagnostics décarbonation",
        ),
    )
    report(
        at("25/04/2024"),
        "FA-01",
        "Bâtiment retenu sur la ZA de Château-Renault, bail signé.",
        milestones=[("Choix du site et du bâtiment", date(2024, 4, 25))],
    )

    # May–June: FA-09 revised, FA-10 and FA-11 proposed; the second COPIL.
    revised_09 = _proposal(
        "FA-09",
        budget=[BudgetLineForm(year=2024, kind=BudgetKind.FONCTIONNEMENT, amount=Decimal(30000))],
        milestones=[MilestoneForm(title="Inventaire des parcelles", due_date=date(2024, 9, 30))],
        partners=["CC BVC", "CC Castelrenaudais"],
    )
    add(at("14/05/2024"), lambda y: y.propose(at("14/05/2024"), revised_09))
    file(at("14/05/2024", 11), "FA-09")
    report(
        at("15/05/2024"),
        "FA-02",
        "Cahier des charges validé avec le CFAI ; consultation lancée.",
        milestones=[("Cahier des charges des équipements", date(2024, 5, 15))],
    )
    add(at("21/05/2024"), lambda y: y.schedule("copil-2", copil_2, CHATEAU_RENAULT))
    add(
        at("23/05/2024"),
        lambda y: y.propose(
            at("23/05/2024"),
            _proposal("FA-10"),
            _proposal("FA-11", start_date=date(2024, 7, 1)),
        ),
    )
    file(at("23/05/2024", 11), "FA-10", "FA-11")
    report(
        at("31/05/2024"),
        "FA-07",
        "Plateforme RH ouverte : 12 entreprises inscrites la première semaine.",
        milestones=[("Ouverture de la plateforme", date(2024, 5, 31))],
        indicators=[("Recrutements accompagnés", "12")],
    )
    digests(copil_2)
    fund(at("14/06/2024"), "FA-03", "CC TEV", "0")
    decisions_2 = [
        decision("FA-09", V),
        decision(
            "FA-10",
            A,
            comment="En attente des résultats de l'appel à projets Fonds vert (septembre)",
        ),
        decision("FA-11", V, conditions="Associer le club GEIDA"),
    ]
    add(at("20/06/2024", 17), lambda y: y.hold("copil-2", at("20/06/2024", 17), decisions_2))
    # its minutes wait for the elected officials' proofreading: reminded at J+3, then recorded
    after(copil_2, "copil-2", at("24/06/2024", 11), "FA-09 et FA-11 validées, FA-10 ajournée.")

    # The balance of each 2024 tranche, paid on the pilots' statements of expenses; FA-04's
    # Région payment comes in two parts, reminded in between with what remains to be paid.
    pay(at("28/06/2024"), "FA-06")
    pay(at("28/06/2024"), "FA-08")
    pay(at("10/07/2024"), "FA-04", "État")
    pay(at("10/07/2024"), "FA-04", "Région", "12000")
    pay(at("25/07/2024"), "FA-04", "Région")
    pay(at("25/07/2024"), "FA-01")
    pay(at("25/07/2024"), "FA-05")
    pay(at("09/08/2024"), "FA-07")
    pay(at("28/08/2024"), "FA-02")
    pay(at("28/08/2024"), "FA-09")
    pay(at("30/09/2024"), "FA-03", "ANCT")
    pay(at("30/10/2024"), "FA-11")

    # July–October: the new actions are funded and started; the third COPIL.
    fund(at("03/07/2024"), "FA-09", "ANCT", "15000", requested="15000")
    report(
        at("05/07/2024"),
        "FA-05",
        "Bilan : 620 élèves en visite, 41 stages de 3e dans l'industrie.",
        milestones=[("Bilan des visites et stages", date(2024, 7, 5))],
        indicators=[("Élèves ayant visité une usine", "620")],
    )
    fund(at("08/07/2024"), "FA-11", "ADEME", "49000", convention="ADEME-24CVC0042")
    fund(at("10/07/2024"), "FA-09", "CC BVC", "15000", requested="15000")
    start(at("11/07/2024"), "FA-09")
    fund(at("15/07/2024"), "FA-11", "Région", "21000", convention="CVL-2024-0718")
    start(at("16/07/2024"), "FA-11")
    report(
        at("30/08/2024"),
        "FA-03",
        "Appel à candidatures publié ; 11 start-up intéressées. Financement CC TEV à retrouver.",
        milestones=[("Appel à candidatures des start-up", date(2024, 8, 30))],
    )
    add(at("23/09/2024"), lambda y: y.schedule("copil-3", copil_3, AMBOISE))
    report(
        at("27/09/2024"),
        "FA-09",
        "Inventaire terminé : 95 ha qualifiés sur les 4 communautés de communes.",
        milestones=[("Inventaire des parcelles", date(2024, 9, 27))],
        indicators=[("Hectares qualifiés", "95")],
    )
    report(
        at("01/10/2024"),
        "FA-02",
        "Premières sessions : 24 apprentis formés sur les nouveaux équipements.",
        milestones=[("Premières sessions de formation", date(2024, 10, 1))],
        indicators=[("Apprentis formés par an", "24")],
    )
    digests(copil_3)
    decisions_3 = [decision("FA-10", V, comment="Lauréate de l'appel à projets Fonds vert")]
    add(at("17/10/2024", 12), lambda y: y.hold("copil-3", at("17/10/2024", 12), decisions_3))
    after(copil_3, "copil-3", at("18/10/2024", 15), "FA-10 validée (Fonds vert).")
    report(
        at("30/10/2024"),
        "FA-11",
        "Cartographie des flux de 18 entreprises achevée.",
        milestones=[("Cartographie des flux", date(2024, 10, 30))],
    )

    # November–December: FA-10 partly funded; FA-01's milestone of 15/11 runs late.
    fund(at("05/11/2024"), "FA-10", "État", "150000", convention="FONDS-VERT-2024-221")
    report(
        at("05/12/2024"),
        "FA-01",
        "Livraison du robot collaboratif reportée de trois semaines ; démonstrateurs installés.",
        milestones=[("Installation des démonstrateurs", date(2024, 12, 5))],
    )
    add(
        at("16/12/2024"),
        lambda y: y.complete(at("16/12/2024"), "FA-05", "Année scolaire 2024 bouclée"),
    )
    add(at("19/12/2024"), lambda y: y.complete(at("19/12/2024"), "FA-08", "Programme 2024 réalisé"))

    # January 2025: the 2024 budget is consolidated on the first working day.
    add(BUDGET_RUN, lambda y: y.consolidate())
    return s


def play_year(
    engine: Engine, progress: Progress = NO_PROGRESS, runner: Runner | None = None
) -> YearReport:
    """Play the year on `engine` (the example loaded, nothing else): the flows read and write
    the database of TIFLOW_DATABASE_URL, which must be the same one."""
    return Year(engine, progress, runner).play(steps())


def month_label(day: date) -> str:
    """« janvier 2024 »."""
    return format_date(day.replace(day=1)).split(" ", 2)[2]
