"""Notices that follow a lifecycle decision, built inside the decision's unit of work (the
message bus of flows/usecases/bus.py calls them before commit):

- validated: the pilot learns what comes next, the funders what is asked of them;
- revision requested: the pilot learns what to change and by when (the next COPIL);
- rejected, deferred: the pilot learns the COPIL's decision and its reasons;
- funded: the pilot and the coordination get the kick-off with the coming milestones.

A notice is keyed by the history row of the transition it announces, so the same transition
handled twice (a retried run, a second trigger) enqueues nothing new.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from sqlmodel import col, select

from models.deadlines import paris_date
from models.errors import NotFound
from models.lifecycle import State
from models.money import ZERO
from models.tables import (
    ActionSheet,
    CopilMeeting,
    Funding,
    Milestone,
    Organisation,
    Person,
    Territory,
    TransitionRecord,
)
from models.uow import UnitOfWork
from models.vocabulary import CopilStatus, Role
from notifications.fr import format_date, format_eur
from notifications.outbox import NewMessage, Recipient
from notifications.templates import ReplyTo, render

SIGNATURE = "La coordination du Territoire d'industrie"


def _last_transition(uow: UnitOfWork, action: ActionSheet, to_state: State) -> TransitionRecord:
    record = uow.session.exec(
        select(TransitionRecord)
        .where(TransitionRecord.action_id == action.id, TransitionRecord.to_state == to_state)
        .order_by(col(TransitionRecord.id).desc())
    ).first()
    if record is None:
        raise NotFound(f"L'action {action.number} n'est jamais passée à « {to_state.label} ».")
    return record


def _fundings(uow: UnitOfWork, action: ActionSheet) -> list[tuple[Funding, Organisation]]:
    rows = uow.session.exec(
        select(Funding, Organisation)
        .join(Organisation, col(Organisation.id) == col(Funding.funder_id))
        .where(Funding.action_id == action.id)
        .order_by(col(Funding.year), col(Organisation.name))
    ).all()
    return [(funding, funder) for funding, funder in rows]


def _funding_line(funding: Funding, funder: Organisation) -> str:
    name = funder.short_name or funder.name
    parts = [
        f"{name} ({funding.year}) : demandé {format_eur(funding.requested)},"
        f" accordé {format_eur(funding.granted)}"
    ]
    if funding.dossier_due:
        parts.append(f"dossier à déposer avant le {format_date(funding.dossier_due)}")
    if funding.decision_expected:
        parts.append(f"décision attendue le {format_date(funding.decision_expected)}")
    return ", ".join(parts)


def _coordinators(uow: UnitOfWork, territory_id: int) -> Sequence[Person]:
    return uow.repo.people_with_role(territory_id, Role.COORDINATOR)


def _message(
    *,
    key: str,
    kind: str,
    tag: str,
    to: Sequence[Person],
    subject: str,
    territory: Territory,
    context: dict[str, object],
    reply_to: Person | None,  # required: every notice says whom a reply reaches
) -> NewMessage:
    reply = ReplyTo(reply_to.full_name, reply_to.email) if reply_to else None
    text, html = render("generic", reply_to=reply, signature=SIGNATURE, **context)
    return NewMessage(
        reply_to=reply.header if reply else None,
        key=key,
        kind=kind,
        tag=tag,
        to=[Recipient.of(p) for p in to],
        subject=subject,
        text=text,
        html=html,
        territory_id=territory.id,
    )


def next_steps_notice(uow: UnitOfWork, territory_code: str, number: str) -> list[NewMessage]:
    """After a COPIL validation: the pilot learns what to do next, the funders what is asked."""
    action = uow.repo.action(territory_code, number)
    territory = uow.repo.territory(territory_code)
    assert action.id is not None and territory.id is not None
    validated = _last_transition(uow, action, State.VALIDATED)
    fundings = _fundings(uow, action)
    budget = uow.repo.budget_total(action.id)
    granted = uow.repo.granted_total(action.id)
    missing = max(budget - granted, ZERO)
    lines = [_funding_line(f, o) for f, o in fundings] or ["Aucun financement demandé à ce jour."]
    subject = f"Action {action.number} validée en COPIL : prochaines étapes"
    title = f"{action.number} « {action.title} » est validée"
    key = f"next-steps:{territory.code}:{action.number}:{validated.id}"
    messages = []
    pilot = uow.repo.person(action.pilot_id)
    coordinator = next(iter(_coordinators(uow, territory.id)), None)
    if pilot:
        paragraphs = [
            f"Le COPIL a validé l'action {action.number} le {format_date(_paris_day(validated))}.",
            f"Budget : {format_eur(budget)} ; financements accordés : {format_eur(granted)}"
            + (f" ; reste à obtenir : {format_eur(missing)}." if missing else "."),
            "Prochaine étape : déposer ou compléter les dossiers de financement ci-dessous ;"
            " l'action passera à « financée » dès que les montants accordés couvriront le budget.",
        ]
        if validated.reason:
            paragraphs.insert(1, f"Conditions ou commentaire du COPIL : {validated.reason}")
        messages.append(
            _message(
                key=key + ":pilot",
                kind="next-steps",
                tag="pilots",
                to=[pilot],
                subject=subject,
                territory=territory,
                reply_to=coordinator,
                context={
                    "title": title,
                    "greeting": f"Bonjour {pilot.full_name},",
                    "paragraphs": paragraphs,
                    "items_title": "Financements",
                    "items": lines,
                },
            )
        )
    funder_people = _funder_contacts(uow, territory.id, [o.id for _, o in fundings])
    if funder_people:
        messages.append(
            _message(
                key=key + ":funders",
                kind="next-steps",
                tag="copil",
                to=funder_people,
                subject=subject,
                territory=territory,
                reply_to=pilot or coordinator,  # funders' questions go to the pilot
                context={
                    "title": title,
                    "greeting": "Bonjour,",
                    "paragraphs": [
                        f"Le COPIL du territoire {territory.name} a validé l'action"
                        f" {action.number}, pour laquelle votre organisation est sollicitée.",
                        *([f"Pilote : {pilot.full_name} ({pilot.email})."] if pilot else []),
                    ],
                    "items_title": "Demandes de financement",
                    "items": lines,
                },
            )
        )
    return messages


def kickoff_notice(uow: UnitOfWork, territory_code: str, number: str) -> list[NewMessage]:
    """Once funded: the pilot and the coordination get the kick-off with the coming milestones."""
    action = uow.repo.action(territory_code, number)
    territory = uow.repo.territory(territory_code)
    assert action.id is not None and territory.id is not None
    funded = _last_transition(uow, action, State.FUNDED)
    milestones = uow.session.exec(
        select(Milestone)
        .where(Milestone.action_id == action.id, col(Milestone.done_on).is_(None))
        .order_by(col(Milestone.due_date))
    ).all()
    pilot = uow.repo.person(action.pilot_id)
    coordinators = _coordinators(uow, territory.id)
    recipients = [p for p in [pilot, *coordinators] if p is not None]
    if not recipients:
        return []
    paragraphs = [
        f"Les financements de l'action {action.number} sont acquis"
        f" ({format_eur(uow.repo.granted_total(action.id))} accordés) : elle peut démarrer.",
    ]
    if funded.override:
        paragraphs.append(f"Passage à « financée » forcé, motif : {funded.reason}")
    paragraphs.append(
        "Pour la passer « en cours », lancez le flux « Démarrer une action » (ou répondez à ce"
        " message pour que la coordination le fasse)."
    )
    return [
        _message(
            key=f"kickoff:{territory.code}:{action.number}:{funded.id}",
            kind="kickoff",
            tag="pilots",
            to=recipients,
            subject=f"Action {action.number} financée : lancement",
            territory=territory,
            reply_to=next(iter(coordinators), None),
            context={
                "title": f"{action.number} « {action.title} » est financée",
                "greeting": "Bonjour,",
                "paragraphs": paragraphs,
                "items_title": "Prochains jalons",
                "items": [f"{m.title} : {format_date(m.due_date)}" for m in milestones]
                or ["Aucun jalon à venir."],
            },
        )
    ]


def _funder_contacts(
    uow: UnitOfWork, territory_id: int, funder_ids: list[int | None]
) -> Sequence[Person]:
    ids = [i for i in funder_ids if i is not None]
    if not ids:
        return []
    return uow.session.exec(
        select(Person)
        .where(Person.territory_id == territory_id, col(Person.organisation_id).in_(ids))
        .order_by(Person.full_name)
    ).all()


def _paris_day(record: TransitionRecord) -> date:
    return paris_date(record.at)


def decision_notice(
    uow: UnitOfWork, territory_code: str, number: str, outcome: State
) -> list[NewMessage]:
    """After a COPIL rejected, deferred or asked to revise an action: its pilot is told why,
    and (deferred, revision) when it comes back before the COPIL."""
    action = uow.repo.action(territory_code, number)
    territory = uow.repo.territory(territory_code)
    pilot = uow.repo.person(action.pilot_id)
    if pilot is None:
        return []
    record = _last_transition(uow, action, outcome)
    day = format_date(_paris_day(record))
    next_copil = _next_copil(uow, territory, record)
    kind, subject = _DECISION_NOTICES[outcome]
    paragraphs = _decision_paragraphs(outcome, action.number, day, next_copil, record.reason)
    return [
        _message(
            key=f"{kind}:{territory.code}:{action.number}:{record.id}:pilot",
            kind=kind,
            tag="pilots",
            to=[pilot],
            subject=subject.format(number=action.number),
            territory=territory,
            context={
                "title": f"{action.number} « {action.title} » : {outcome.label}",
                "greeting": f"Bonjour {pilot.full_name},",
                "paragraphs": paragraphs,
            },
            reply_to=next(iter(_coordinators(uow, action.territory_id)), None),
        )
    ]


def _next_copil(uow: UnitOfWork, territory: Territory, after: TransitionRecord) -> str:
    """« le COPIL du 12 juin 2025 » if one is planned after the decision, else a plain phrase."""
    meeting = uow.session.exec(
        select(CopilMeeting)
        .where(
            CopilMeeting.territory_id == territory.id,
            CopilMeeting.status == CopilStatus.SCHEDULED,
            col(CopilMeeting.held_at) > after.at,
        )
        .order_by(col(CopilMeeting.held_at))
    ).first()
    if meeting is None:
        return "le prochain COPIL (sa date vous sera communiquée)"
    return f"le COPIL du {format_date(paris_date(meeting.held_at))}"


# kind (outbox) and subject of the notice of each COPIL decision other than a validation
_DECISION_NOTICES = {
    State.REVISION_REQUESTED: ("revision", "Action {number} : révision demandée par le COPIL"),
    State.REJECTED: ("rejection", "Action {number} rejetée en COPIL"),
    State.DEFERRED: ("deferral", "Action {number} ajournée en COPIL"),
}
UNSAID = "voir le relevé de décisions du COPIL."


def _decision_paragraphs(
    outcome: State, number: str, day: str, next_copil: str, reason: str | None
) -> list[str]:
    if outcome is State.REVISION_REQUESTED:
        return [
            f"Le COPIL du {day} demande une révision de l'action {number}.",
            f"Ce qu'il faut changer : {reason or UNSAID}",
            f"À faire avant {next_copil} : mettez la fiche à jour, puis proposez-la à nouveau"
            " (la coordination peut le faire pour vous).",
        ]
    if outcome is State.REJECTED:
        return [
            f"Le COPIL du {day} n'a pas retenu l'action {number}.",
            f"Motif : {reason or UNSAID}",
            "La fiche est close ; la coordination reste à votre disposition pour en parler.",
        ]
    return [
        f"Le COPIL du {day} a ajourné sa décision sur l'action {number}.",
        *([f"Commentaire du COPIL : {reason}"] if reason else []),
        f"Elle sera examinée à nouveau lors du {next_copil.removeprefix('le ')}.",
    ]
