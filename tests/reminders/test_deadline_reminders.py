"""Deadline reminders on SQLite and PostgreSQL, delivered to a real SMTP server on loopback."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from flows.usecases.reminders import ReminderSettings
from models.deadlines import paris_date
from models.lifecycle import State
from models.outbox import OutboxItem, OutboxMessage, OutboxStatus
from models.tables import ActionSheet, FollowUpNote, Funding, Milestone, Organisation, Territory
from models.transitions import transition_action
from models.uow import UnitOfWork
from models.vocabulary import OrganisationKind, Role
from tests.reminders.conftest import (
    QUIET,
    SmallPlan,
    action,
    add_milestone,
    at_8_paris,
    inbox,
    person,
    run_day,
    smtp_deliverer,
)
from tests.smtp_sink import SmtpSink, body_of

HELENE = "helene.garnier@aicr.example"
KARIM = "karim.haddad@cc-tev.example"
CLAIRE = "claire.moreau@grand-est-touraine.example"
D = date(2025, 6, 2)  # lundi 2 juin 2025

M = OutboxMessage.__table__  # type: ignore[attr-defined]
I = OutboxItem.__table__  # type: ignore[attr-defined]  # noqa: E741


def sent_items(engine: Engine) -> list[tuple[str, date, date]]:
    """(item key, reminder day, Paris day it was enqueued) of every sent reminder item."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(I.c.item_key, I.c.remind_on, M.c.created_at)
            .join(M, M.c.id == I.c.message_id)
            .where(M.c.status == OutboxStatus.SENT.value)
        ).all()
    return [(key, remind_on, paris_date(created)) for key, remind_on, created in rows]


def messages(engine: Engine, **where: object) -> list[sa.Row]:
    with engine.connect() as conn:
        query = sa.select(M).order_by(M.c.id)
        for column, value in where.items():
            query = query.where(M.c[column] == value)
        return list(conn.execute(query))


def test_a_pilot_gets_one_email_a_day_grouping_all_their_items(
    engine: Engine, plan: SmallPlan, smtp_sink: SmtpSink
) -> None:
    add_milestone(engine, plan.fa01, "Installation des démonstrateurs", D + timedelta(days=7))
    add_milestone(engine, plan.fa03, "Programme d'animation annuel", D + timedelta(days=30))
    add_milestone(engine, plan.fa03, "Ouverture au public", D)
    add_milestone(engine, plan.fa02, "Cahier des charges des équipements", D + timedelta(days=1))
    with smtp_deliverer(smtp_sink) as deliverer:
        report = run_day(engine, deliverer, D)
    assert report.delivery.sent == 2
    (mail,) = inbox(smtp_sink, HELENE)
    assert mail["Subject"] == "Rappel\u00a0: 3 échéances pour vos actions"
    text = body_of(mail)
    assert "Bonjour Hélène Garnier," in text
    assert "Voici le point sur les échéances de vos actions au lundi 2 juin 2025." in text
    assert (
        "Jalon «\u00a0Ouverture au public\u00a0»\u00a0: lundi 2 juin 2025 (échéance aujourd'hui)"
        in text
    )
    assert (
        "Jalon «\u00a0Installation des démonstrateurs\u00a0»\u00a0: lundi 9 juin 2025"
        " (dans 7 jours)" in text
    )
    assert (
        "Jalon «\u00a0Programme d'animation annuel\u00a0»\u00a0: mercredi 2 juillet 2025"
        " (dans 30 jours)" in text
    )
    assert text.index("Aujourd'hui") < text.index("À venir")
    assert "Claire Moreau <claire.moreau@grand-est-touraine.example>" in text
    (other,) = inbox(smtp_sink, KARIM)
    assert (
        other["Subject"]
        == "Rappel FA-02 «\u00a0Industry-lab au CFAI d'Amboise\u00a0»\u00a0: demain"
    )


@pytest.mark.parametrize("closed", [State.COMPLETED, State.ABANDONED, State.REJECTED])
def test_nothing_is_reminded_for_a_closed_action(
    engine: Engine, plan: SmallPlan, smtp_sink: SmtpSink, closed: State
) -> None:
    add_milestone(engine, plan.fa01, "Installation des démonstrateurs", D + timedelta(days=7))
    with engine.begin() as conn:
        table = ActionSheet.__table__  # type: ignore[attr-defined]
        conn.execute(
            sa.update(table)
            .where(table.c.id == plan.fa01)
            .values(state=closed.value, end_date=D + timedelta(days=1))
        )
    with smtp_deliverer(smtp_sink) as deliverer:
        for day in (D, D + timedelta(days=6), D + timedelta(days=20)):
            run_day(engine, deliverer, day, ReminderSettings(nudge_after_weeks=1))
    mails = inbox(smtp_sink, HELENE)
    assert mails  # the sweeps ran: her other action, FA-03, gets its weekly nudge...
    assert all("FA-03" in body_of(m) and "FA-01" not in body_of(m) for m in mails)  # ...not FA-01


def test_offsets_then_weekly_overdue_reminders_and_one_escalation(
    engine: Engine, plan: SmallPlan, smtp_sink: SmtpSink
) -> None:
    due = D + timedelta(days=30)
    add_milestone(engine, plan.fa01, "Installation des démonstrateurs", due)
    with smtp_deliverer(smtp_sink) as deliverer:
        for n in range(0, 53):
            run_day(engine, deliverer, D + timedelta(days=n))
    got = sorted((day, key.split(":")[3]) for key, day, _ in sent_items(engine))
    assert got == [
        (due - timedelta(days=30), "J-30"),
        (due - timedelta(days=7), "J-7"),
        (due - timedelta(days=1), "J-1"),
        (due, "J0"),
        (due + timedelta(days=7), "R+7"),
        (due + timedelta(days=14), "E+14"),  # to the coordinator
        (due + timedelta(days=14), "R+14"),
        (due + timedelta(days=21), "R+21"),
    ]
    assert len(inbox(smtp_sink, HELENE)) == 7
    (alert,) = inbox(smtp_sink, CLAIRE)
    assert alert["Subject"] == "Alerte plan d'actions\u00a0: 1 échéance en retard"
    text = body_of(alert)
    assert "Échéances en retard de plus de 14 jours au mercredi 16 juillet 2025" in text
    assert "Pilote\u00a0: Hélène Garnier <helene.garnier@aicr.example>" in text
    assert "en retard de 14 jours" in text


def _dst_milestones(engine: Engine, plan: SmallPlan, change: date) -> list[int]:
    """Milestones whose J-7, J-1, J0 or R+7 fall on the night the clocks change."""
    return [
        add_milestone(engine, plan.fa01, f"Jalon J{n:+d}", change + timedelta(days=n))
        for n in (-7, 0, 1, 7)
    ]


@pytest.mark.parametrize("catch_up", [0, 3], ids=["exact-day", "catch-up-3-days"])
@pytest.mark.parametrize("change", [date(2025, 3, 30), date(2025, 10, 26)], ids=["mars", "octobre"])
def test_daily_sweeps_across_a_dst_change_remind_every_offset_exactly_once(
    engine: Engine, plan: SmallPlan, smtp_sink: SmtpSink, change: date, catch_up: int
) -> None:
    ids = _dst_milestones(engine, plan, change)
    first, last = change - timedelta(days=16), change + timedelta(days=16)
    settings = ReminderSettings(nudge_after_weeks=52, catch_up_days=catch_up)
    with smtp_deliverer(smtp_sink) as deliverer:
        day = first
        while day <= last:
            # At 00:30 Paris (still the day before in UTC) and at 08:00: same Paris day.
            run_day(engine, deliverer, day, settings, hour=0, minute=30)
            run_day(engine, deliverer, day, settings)
            day += timedelta(days=1)
    expected = set()
    with UnitOfWork(engine) as uow:
        for mid in ids:
            due = uow.session.get_one(Milestone, mid).due_date
            for label, when in [
                ("J-7", due - timedelta(days=7)),
                ("J-1", due - timedelta(days=1)),
                ("J0", due),
                *((f"R+{k * 7}", due + timedelta(days=k * 7)) for k in range(1, 6)),
            ]:
                if first <= when <= last:
                    expected.add(
                        (f"milestone:{mid}:{due.isoformat()}:{label}:p{plan.helene}", when)
                    )
    items = [(key, day, sent_on) for key, day, sent_on in sent_items(engine) if "E+" not in key]
    assert Counter(key for key, _, _ in items) == Counter({key: 1 for key, _ in expected})
    assert {(key, day) for key, day, _ in items} == expected
    assert all(day == sent_on for _, day, sent_on in items)  # sent on its own Paris day
    # One e-mail per day with something to say, never two.
    days_with_items = {day for _, day in expected}
    assert len(inbox(smtp_sink, HELENE)) == len(days_with_items)


def test_rerunning_a_day_sends_nothing_new_and_as_of_catches_up_a_missed_day(
    engine: Engine, plan: SmallPlan, smtp_sink: SmtpSink
) -> None:
    add_milestone(engine, plan.fa01, "Installation des démonstrateurs", D + timedelta(days=7))
    add_milestone(engine, plan.fa02, "Cahier des charges", D + timedelta(days=6))
    from flows.usecases.reminders import sweep

    with smtp_deliverer(smtp_sink) as deliverer:
        run_day(engine, deliverer, D)
        again = run_day(engine, deliverer, D)
        # The day before was missed: the coordinator re-runs it with as_of.
        missed = sweep(engine, deliverer, as_of=D - timedelta(days=1), settings=QUIET)
        missed_again = sweep(engine, deliverer, as_of=D - timedelta(days=1), settings=QUIET)
    assert (again.enqueued.messages, again.delivery.sent) == (0, 0)
    assert (missed.enqueued.messages, missed.delivery.sent) == (1, 1)
    assert missed_again.delivery.sent == 0
    assert len(inbox(smtp_sink, HELENE)) == 1
    (late,) = inbox(smtp_sink, KARIM)
    assert "Cahier des charges" in body_of(late) and "dans 7 jours" in body_of(late)


def test_a_reminder_due_on_a_day_the_flow_did_not_run_goes_out_at_the_next_run(
    engine: Engine, plan: SmallPlan, smtp_sink: SmtpSink
) -> None:
    add_milestone(engine, plan.fa01, "Installation des démonstrateurs", D + timedelta(days=7))
    caught_up = ReminderSettings(nudge_after_weeks=52, catch_up_days=3)
    with smtp_deliverer(smtp_sink) as deliverer:
        run_day(engine, deliverer, D + timedelta(days=2), caught_up)  # J-7 was two days ago
        run_day(engine, deliverer, D + timedelta(days=3), caught_up)
    (mail,) = inbox(smtp_sink, HELENE)
    assert "lundi 9 juin 2025 (dans 5 jours)" in body_of(mail)


def _smtp_down_on(engine: Engine, sink: SmtpSink, day: date) -> None:
    sink.stop()
    with smtp_deliverer(sink) as deliverer:
        report = run_day(engine, deliverer, day)
    assert report.delivery.retry >= 1 and report.delivery.sent == 0
    sink.restart()


def test_pending_reminder_for_a_changed_due_date_is_dropped_never_sent(
    engine: Engine, plan: SmallPlan, smtp_sink: SmtpSink
) -> None:
    mid = add_milestone(engine, plan.fa01, "Installation des démonstrateurs", D + timedelta(days=7))
    _smtp_down_on(engine, smtp_sink, D)
    with UnitOfWork(engine) as uow:
        uow.session.get_one(Milestone, mid).due_date = D + timedelta(days=21)
        uow.commit()
    with smtp_deliverer(smtp_sink) as deliverer:
        next_day = run_day(engine, deliverer, D + timedelta(days=1))
        new_j7 = run_day(engine, deliverer, D + timedelta(days=14))
    assert next_day.enqueued.superseded == 1 and next_day.delivery.sent == 0
    (old,) = messages(engine, status="dropped")
    assert old.drop_reason == "superseded"
    assert new_j7.delivery.sent == 1
    (mail,) = inbox(smtp_sink, HELENE)  # only the reminder for the new date
    assert "lundi 23 juin 2025 (dans 7 jours)" in body_of(mail)
    assert "lundi 9 juin 2025" not in body_of(mail)


def test_pending_reminder_is_dropped_when_the_pilot_changes(
    engine: Engine, plan: SmallPlan, smtp_sink: SmtpSink
) -> None:
    add_milestone(engine, plan.fa01, "Installation des démonstrateurs", D + timedelta(days=7))
    _smtp_down_on(engine, smtp_sink, D)
    with UnitOfWork(engine) as uow:
        uow.session.get_one(ActionSheet, plan.fa01).pilot_id = plan.karim
        uow.commit()
    with smtp_deliverer(smtp_sink) as deliverer:
        for n in range(1, 8):
            run_day(engine, deliverer, D + timedelta(days=n))
    assert inbox(smtp_sink, HELENE) == []
    karim = inbox(smtp_sink, KARIM)
    assert [m["Subject"] for m in karim] == [
        "Rappel FA-01 «\u00a0Usine-témoin de l'industrie du futur\u00a0»\u00a0: demain",
        "Rappel FA-01 «\u00a0Usine-témoin de l'industrie"
        " du futur\u00a0»\u00a0: échéance aujourd'hui",
    ]


def test_pending_reminder_is_dropped_when_the_action_is_completed(
    engine: Engine, plan: SmallPlan, smtp_sink: SmtpSink
) -> None:
    add_milestone(engine, plan.fa01, "Installation des démonstrateurs", D + timedelta(days=7))
    _smtp_down_on(engine, smtp_sink, D)
    with UnitOfWork(engine) as uow:
        action = uow.session.get_one(ActionSheet, plan.fa01)
        transition_action(uow, action, State.COMPLETED, actor="Claire Moreau")
        uow.commit()
    with smtp_deliverer(smtp_sink) as deliverer:
        for n in range(1, 8):
            run_day(engine, deliverer, D + timedelta(days=n))
    assert smtp_sink.received == []
    assert {r.status for r in messages(engine)} == {OutboxStatus.DROPPED}


def test_a_delivery_round_alone_drops_a_stale_reminder(
    engine: Engine, plan: SmallPlan, smtp_sink: SmtpSink
) -> None:
    from notifications.outbox import deliver_pending

    mid = add_milestone(engine, plan.fa01, "Installation des démonstrateurs", D + timedelta(days=7))
    _smtp_down_on(engine, smtp_sink, D)
    with UnitOfWork(engine) as uow:
        uow.session.get_one(Milestone, mid).done_on = D
        uow.commit()
    with smtp_deliverer(smtp_sink) as deliverer:
        report = deliver_pending(engine, deliverer)
    assert (report.dropped, report.sent) == (1, 0)
    (row,) = messages(engine)
    assert row.status is OutboxStatus.DROPPED and row.drop_reason == "stale"
    assert "a changé depuis la mise en file" in row.last_error
    assert smtp_sink.received == []


@pytest.mark.parametrize(("after", "dropped"), [(29, False), (30, True)])
def test_facts_read_by_the_enqueue_are_checked_again_once_30_seconds_old(
    engine: Engine, plan: SmallPlan, smtp_sink: SmtpSink, after: int, dropped: bool
) -> None:
    """A round right after its sweep sends what the sweep read seconds ago without reading
    it again (DeliveryPolicy.recheck_after); from 30 seconds on, the edit is seen."""
    from flows.usecases.reminders import plan_and_enqueue
    from notifications.outbox import deliver_pending

    mid = add_milestone(engine, plan.fa01, "Installation des démonstrateurs", D + timedelta(days=7))
    enqueued_at = at_8_paris(D)
    plan_and_enqueue(engine, D, QUIET, now=enqueued_at)
    with UnitOfWork(engine) as uow:
        uow.session.get_one(Milestone, mid).done_on = D
        uow.commit()
    with smtp_deliverer(smtp_sink) as deliverer:
        report = deliver_pending(engine, deliverer, now=enqueued_at + timedelta(seconds=after))
    assert (report.dropped, report.sent) == ((1, 0) if dropped else (0, 1))
    assert len(inbox(smtp_sink, HELENE)) == (0 if dropped else 1)


def test_yesterdays_unsent_reminder_is_folded_into_todays_single_email(
    engine: Engine, plan: SmallPlan, smtp_sink: SmtpSink
) -> None:
    add_milestone(engine, plan.fa01, "Installation des démonstrateurs", D + timedelta(days=7))
    add_milestone(engine, plan.fa03, "Ouverture au public", D + timedelta(days=1))
    _smtp_down_on(engine, smtp_sink, D)
    with smtp_deliverer(smtp_sink) as deliverer:
        report = run_day(engine, deliverer, D + timedelta(days=1))
    assert report.enqueued.superseded == 1 and report.delivery.sent == 1
    (mail,) = inbox(smtp_sink, HELENE)
    text = body_of(mail)
    assert "Installation des démonstrateurs\u00a0»\u00a0: lundi 9 juin 2025 (dans 6 jours)" in text
    assert "Ouverture au public\u00a0»\u00a0: mardi 3 juin 2025 (échéance aujourd'hui)" in text
    old, new = messages(engine)
    assert old.status is OutboxStatus.DROPPED and old.superseded_by == new.id
    assert new.status is OutboxStatus.SENT


def test_funding_deadlines_are_reminded_until_the_funder_decides(
    engine: Engine, plan: SmallPlan, smtp_sink: SmtpSink
) -> None:
    with UnitOfWork(engine) as uow:
        region = Organisation(
            territory_id=plan.territory_id,
            name="Région Centre-Val de Loire",
            short_name="Région",
            kind=OrganisationKind.REGION,
            is_funder=True,
        )
        uow.session.add(region)
        uow.session.flush()
        assert region.id is not None
        funding = Funding(
            action_id=plan.fa02,
            funder_id=region.id,
            year=2025,
            requested=Decimal("120000.00"),
            dossier_due=D + timedelta(days=7),
            decision_expected=D + timedelta(days=8),
        )
        uow.session.add(funding)
        uow.commit()
    with smtp_deliverer(smtp_sink) as deliverer:
        run_day(engine, deliverer, D)
        with UnitOfWork(engine) as uow:
            decided = uow.session.get_one(Funding, funding.id)
            decided.granted, decided.decision_date = Decimal("120000.00"), D + timedelta(days=2)
            uow.commit()
        for n in range(1, 10):
            run_day(engine, deliverer, D + timedelta(days=n))
    (mail,) = inbox(smtp_sink, KARIM)
    assert "Dépôt du dossier de financement (Région)\u00a0: lundi 9 juin 2025 (dans 7 jours)" in (
        body_of(mail)
    )


def test_where_are_you_nudge_after_six_weeks_without_a_note_by_the_pilot(
    engine: Engine, plan: SmallPlan, smtp_sink: SmtpSink
) -> None:
    with UnitOfWork(engine) as uow:
        # FA-01: the pilot wrote 6 weeks ago. FA-03: only the coordinator wrote, recently.
        uow.session.add(
            FollowUpNote(
                action_id=plan.fa01,
                author_id=plan.helene,
                written_on=D - timedelta(weeks=6),
                text="Site choisi.",
            )
        )
        uow.session.add(
            FollowUpNote(
                action_id=plan.fa03,
                author_id=plan.claire,
                written_on=D - timedelta(days=3),
                text="Relancé.",
            )
        )
        uow.session.get_one(ActionSheet, plan.fa03).start_date = D - timedelta(weeks=5)
        uow.commit()
    weekly = ReminderSettings(catch_up_days=0)
    with smtp_deliverer(smtp_sink) as deliverer:
        run_day(engine, deliverer, D, weekly)
        run_day(engine, deliverer, D + timedelta(weeks=1), weekly)
        with UnitOfWork(engine) as uow:
            uow.session.add(
                FollowUpNote(
                    action_id=plan.fa01,
                    author_id=plan.helene,
                    written_on=D + timedelta(weeks=1),
                    text="Démarré.",
                )
            )
            uow.commit()
        run_day(engine, deliverer, D + timedelta(weeks=6), weekly)  # 5 weeks after the note
        run_day(engine, deliverer, D + timedelta(weeks=7), weekly)  # 6 weeks after it
    first, second, third = inbox(smtp_sink, HELENE)
    assert (
        first["Subject"]
        == "Où en êtes-vous\u202f? FA-01 «\u00a0Usine-témoin de l'industrie du futur\u00a0»"
    )
    assert "aucune note de suivi depuis le lundi 21 avril 2025 (6 semaines)" in body_of(first)
    # FA-03 started 5 weeks before D, so its nudge comes a week later; the note by the
    # coordinator does not count as the pilot's.
    assert second["Subject"] == "Où en êtes-vous\u202f? FA-03 «\u00a0Tiers-lieu “Le Rubixco”\u00a0»"
    assert "depuis le début de l'action" in body_of(second)
    # The pilot's new note restarts FA-01's count; FA-03 is silent for 12 weeks: one e-mail.
    assert third["Subject"] == "Où en êtes-vous\u202f? 2 actions sans nouvelles"
    assert "depuis le lundi 9 juin 2025 (6 semaines)" in body_of(third)


def test_deadlines_of_an_action_without_pilot_go_to_the_coordinator(
    engine: Engine, plan: SmallPlan, smtp_sink: SmtpSink
) -> None:
    with UnitOfWork(engine) as uow:
        orphan = action(
            uow, plan.territory_id, "FA-09", "Observatoire du foncier", None, State.VALIDATED
        )
        uow.commit()
    add_milestone(engine, orphan, "Inventaire des parcelles", D + timedelta(days=7))
    with smtp_deliverer(smtp_sink) as deliverer:
        run_day(engine, deliverer, D)
    (mail,) = inbox(smtp_sink, CLAIRE)
    assert mail["Subject"] == "Alerte plan d'actions\u00a0: 1 échéance sans pilote"
    assert "Échéances d'actions sans pilote désigné" in body_of(mail)
    assert "FA-09 «\u00a0Observatoire du foncier\u00a0»" in body_of(mail)


def test_territory_without_coordinator_alerts_the_configured_coordinator_address(
    engine: Engine, smtp_sink: SmtpSink
) -> None:
    with UnitOfWork(engine) as uow:
        territory = Territory(code="vallee-de-la-bresle", name="Vallée de la Bresle")
        uow.session.add(territory)
        uow.session.flush()
        assert territory.id is not None
        pilot = person(uow, territory.id, "Marc Aubert", "marc.aubert@bresle.example", Role.PILOT)
        fa = action(uow, territory.id, "FA-01", "Verrerie du futur", pilot, State.IN_PROGRESS)
        uow.commit()
    add_milestone(engine, fa, "Four électrique", D - timedelta(days=14))
    with smtp_deliverer(smtp_sink, to="direction@bresle.example") as deliverer:
        report = run_day(engine, deliverer, D)
    assert report.delivery.sent == 2
    (alert,) = inbox(smtp_sink, "direction@bresle.example")
    assert "Verrerie du futur" in body_of(alert)
    assert len(inbox(smtp_sink, "marc.aubert@bresle.example")) == 1


def test_someone_piloting_actions_in_two_territories_still_gets_one_email(
    engine: Engine, plan: SmallPlan, smtp_sink: SmtpSink
) -> None:
    with UnitOfWork(engine) as uow:
        other = Territory(code="vallee-de-la-bresle", name="Vallée de la Bresle")
        uow.session.add(other)
        uow.session.flush()
        assert other.id is not None
        again = person(uow, other.id, "Hélène Garnier", HELENE.upper(), Role.PILOT)
        fa = action(uow, other.id, "FA-05", "Verrerie du futur", again, State.IN_PROGRESS)
        uow.commit()
    add_milestone(engine, fa, "Four électrique", D + timedelta(days=7))
    add_milestone(engine, plan.fa01, "Installation des démonstrateurs", D + timedelta(days=1))
    with smtp_deliverer(smtp_sink) as deliverer:
        run_day(engine, deliverer, D)
    (mail,) = inbox(smtp_sink, HELENE)
    text = body_of(mail)
    assert "FA-05 «\u00a0Verrerie du futur\u00a0»" in text and "FA-01 «\u00a0Usine-témoin" in text
    assert "Grand Est Touraine, Vallée de la Bresle" in text


def test_a_sweep_that_crashes_half_way_and_is_rerun_sends_each_email_once(
    engine: Engine, plan: SmallPlan, smtp_sink: SmtpSink
) -> None:
    from flows.usecases.reminders import sweep

    add_milestone(engine, plan.fa01, "Installation des démonstrateurs", D + timedelta(days=7))
    add_milestone(engine, plan.fa02, "Cahier des charges", D - timedelta(days=14))  # escalated
    delivered: list[int] = []

    def crash_after_first(row_id: int) -> None:
        delivered.append(row_id)
        raise RuntimeError("worker lost")

    with smtp_deliverer(smtp_sink) as deliverer:
        with pytest.raises(RuntimeError, match="worker lost"):
            sweep(engine, deliverer, settings=QUIET, now=at_8_paris(D), on_sent=crash_after_first)
        assert len(smtp_sink.received) == 1
        rerun = sweep(engine, deliverer, settings=QUIET, now=at_8_paris(D))
    assert (rerun.enqueued.messages, rerun.delivery.sent) == (0, 2)
    per_recipient = Counter(r for m in smtp_sink.received for r in m.rcpt_tos)
    assert per_recipient == Counter({HELENE: 1, KARIM: 1, CLAIRE: 1})


def test_an_unknown_territory_code_is_refused_with_a_french_message(
    engine: Engine, plan: SmallPlan
) -> None:
    from flows.usecases.digest import DigestSettings, compute_digests
    from flows.usecases.reminders import compute_plan
    from models.errors import NotFound

    with UnitOfWork(engine) as uow, pytest.raises(NotFound, match="grand-est-tourain\u00a0»"):
        compute_plan(uow.session, D, ReminderSettings(territories=["grand-est-tourain"]))
    with UnitOfWork(engine) as uow, pytest.raises(NotFound, match="Territoire"):
        compute_digests(uow.session, D, DigestSettings(territories=["bresle"]))
