"""`tiflow demo` plays a year of Grand Est Touraine through the real flows: what it leaves in
the outbox folder, the budget workbook on disk, the database, and what it prints."""

from __future__ import annotations

import io
import re
from collections import Counter
from datetime import date
from decimal import Decimal

import sqlalchemy as sa
from openpyxl import load_workbook

from flows.usecases.budget.reports import XLSX_CONTENT_TYPE
from models.figures import OUT_OF_PLAN
from models.lifecycle import State
from models.money import format_eur
from models.outbox import OutboxMessage
from models.tables import ActionSheet, BudgetLine, CopilMeeting, Funding, TransitionRecord
from tests.demo.conftest import DemoRun
from tiflow.example import PEOPLE

CLAIRE = "claire.moreau@grand-est-touraine.example"  # the coordinator
HELENE = "helene.garnier@aicr.example"  # FA-01's pilot
LATE = "Installation des démonstrateurs"  # FA-01's milestone due 15/11/2024, done 05/12/2024
COPIL_MEMBERS = {email for _, email, _, _, roles in PEOPLE if "copil_member" in roles}


def _states(run: DemoRun) -> dict[str, State]:
    a = ActionSheet.__table__.c  # type: ignore[attr-defined]
    with run.engine.connect() as conn:
        return {n: State(s) for n, s in conn.execute(sa.select(a.number, a.state))}


def test_the_year_ends_with_the_plan_carried_out_as_scripted(demo_run: DemoRun) -> None:
    states = _states(demo_run)
    assert states["FA-05"] is states["FA-08"] is State.COMPLETED
    assert states["FA-12"] is State.ABANDONED
    assert states["FA-03"] is states["FA-10"] is State.VALIDATED  # funding still missing
    in_progress = {"FA-01", "FA-02", "FA-04", "FA-06", "FA-07", "FA-09", "FA-11"}
    assert {n for n, s in states.items() if s is State.IN_PROGRESS} == in_progress

    t = TransitionRecord.__table__.c  # type: ignore[attr-defined]
    a = ActionSheet.__table__.c  # type: ignore[attr-defined]
    with demo_run.engine.connect() as conn:
        history = conn.execute(
            sa.select(a.number, t.from_state, t.to_state, t.at, t.correlation_id)
            .join(ActionSheet, a.id == t.action_id)
            .order_by(t.id)
        ).all()
    # The simulated clock: FA-09 went through a revision request at the first COPIL...
    fa09 = [(r.to_state, r.at.date()) for r in history if r.number == "FA-09"]
    assert fa09[:4] == [
        (State.PROPOSED, date(2024, 1, 11)),
        (State.REVISION_REQUESTED, date(2024, 1, 25)),
        (State.PROPOSED, date(2024, 5, 14)),
        (State.VALIDATED, date(2024, 6, 20)),
    ]
    # ... FA-10 was deferred, then validated by the third one; every move was a flow run.
    fa10 = [r.to_state for r in history if r.number == "FA-10"]
    assert fa10 == [State.PROPOSED, State.DEFERRED, State.VALIDATED]
    assert all(r.correlation_id for r in history)
    assert all(date(2024, 1, 1) <= r.at.date() <= date(2024, 12, 31) for r in history)


def test_the_late_milestone_is_reminded_to_its_pilot_then_escalated_to_the_coordinator(
    demo_run: DemoRun,
) -> None:
    about_it = [e for e in demo_run.of_kind("reminder") if LATE in e.text()]
    assert about_it and {e.to for e in about_it} == {f"Hélène Garnier <{HELENE}>"}
    overdue = [e for e in about_it if "en retard" in e.text()]
    assert overdue, "the pilot is reminded once the milestone is overdue"

    [alert] = [e for e in demo_run.of_kind("escalation") if LATE in e.text()]
    assert alert.to == f"Claire Moreau <{CLAIRE}>"
    body = alert.text()
    # grouped per pilot, then per action: the pilot once, the action's title once
    assert (
        f"Pilote\u00a0: Hélène Garnier <{HELENE}>\n  - FA-01"
        f" «\u00a0Usine-témoin de l'industrie du futur\u00a0»" in body
    )
    assert "vendredi 15 novembre 2024" in body  # the due date
    assert "02/12  alerte au chargé de mission : FA-01 jalon « Installation" in demo_run.output
    assert f"jalon « {LATE} » franchi avec 20 jours de retard" in demo_run.output


def test_members_get_the_digest_ten_days_before_each_copil_and_three_days_before_if_news(
    demo_run: DemoRun,
) -> None:
    m = OutboxMessage.__table__.c  # type: ignore[attr-defined]
    c = CopilMeeting.__table__.c  # type: ignore[attr-defined]
    with demo_run.engine.connect() as conn:
        held = dict(conn.execute(sa.select(c.id, c.held_at)).all())
        keys = conn.execute(sa.select(m.key, m.address).where(m.kind == "digest")).all()
    assert len(held) == 3
    # J-3 only when something changed since J-10: in June (FA-03's CC TEV funding, 14/06).
    with_news = {copil_id for copil_id, at in held.items() if at.month == 6}
    for copil_id, held_at in held.items():
        day = held_at.date().isoformat()
        for label in ("J-10", "J-3"):
            got = {address for key, address in keys if key == f"digest:{copil_id}:{day}:{label}"}
            expected = set() if label == "J-3" and copil_id not in with_news else COPIL_MEMBERS
            assert got == expected, (copil_id, label)
    digests = demo_run.of_kind("digest")
    assert len(digests) == (len(held) + 1) * len(COPIL_MEMBERS)
    first = [e for e in digests if "jeudi 25 janvier 2024 à 9 h 30" in e.subject]
    assert len(first) == len(COPIL_MEMBERS)
    assert all("invitation-copil.ics" in e.attachments() for e in first)
    assert (
        "22/01  synthèse J-3 du COPIL du 25/01/2024 non envoyée : rien n'a changé depuis la"
        " précédente" in demo_run.output
    )
    june_j3 = [e for e in digests if e.path.name.startswith("2024-06-17")]
    assert june_j3 and all("Nouveau depuis la synthèse J-10" in e.text() for e in june_j3)


def test_the_day_after_each_copil_its_record_of_decisions_and_the_minutes_reminder(
    demo_run: DemoRun,
) -> None:
    records = demo_run.of_kind("decision-record")
    subjects = Counter(e.subject for e in records)
    assert set(subjects) == {
        f"Relevé de décisions du COPIL du {day} (Grand Est Touraine)"
        for day in ("25/01/2024", "20/06/2024", "17/10/2024")
    }
    assert {e.to.split(" <")[0] for e in records} >= {"Marc Aubert", "Nadia Benali"}
    assert all(e.path.name[:10] in {"2024-01-26", "2024-06-21", "2024-10-18"} for e in records)
    (reminder,) = demo_run.of_kind("minutes-reminder")  # June's minutes waited for J+3
    assert reminder.path.name.startswith("2024-06-23")
    assert "compte rendu du COPIL du 20/06/2024 (J+3) à enregistrer" in demo_run.output


def test_the_budget_is_consolidated_written_to_disk_and_mailed_with_the_workbook(
    demo_run: DemoRun,
) -> None:
    xlsx = demo_run.folder / "reports" / "budget-2024-grand-est-touraine-v1.xlsx"
    assert xlsx.is_file() and xlsx.with_suffix(".csv").is_file()

    [mail] = demo_run.of_kind("budget")
    assert mail.to == f"Claire Moreau <{CLAIRE}>"
    assert mail.subject == "Budget 2024 consolidé — Grand Est Touraine (version 1)"
    attached = mail.attachments()[xlsx.name]
    assert attached == xlsx.read_bytes()
    part = next(p for p in mail.message.iter_attachments() if p.get_filename() == xlsx.name)
    assert part.get_content_type() == XLSX_CONTENT_TYPE

    # Totals: the workbook's figures against plain sums over the demo's database.
    # Actions rejected or abandoned (FA-12) are out of the plan: not in « Prévu ».
    b = BudgetLine.__table__.c  # type: ignore[attr-defined]
    f = Funding.__table__.c  # type: ignore[attr-defined]
    a = ActionSheet.__table__.c  # type: ignore[attr-defined]
    out = [s.value for s in OUT_OF_PLAN]
    with demo_run.engine.connect() as conn:
        planned = sum(
            conn.execute(
                sa.select(b.amount)
                .join(ActionSheet, a.id == b.action_id)
                .where(b.year == 2024, a.state.not_in(out))
            ).scalars()
        )
        granted = sum(
            conn.execute(
                sa.select(f.granted)
                .join(ActionSheet, a.id == f.action_id)
                .where(f.year == 2024, a.state.not_in(out))
            ).scalars()
        )
    workbook = load_workbook(io.BytesIO(attached))
    summary = {r[0]: r[1] for r in workbook["Synthèse"].iter_rows(values_only=True) if r and r[0]}
    assert Decimal(str(summary["Prévu total"])) == planned
    assert Decimal(str(summary["Accordé"])) == granted
    assert summary["Actions de l'année"] == 11
    dropped = list(workbook["Rejetées ou abandonnées"].iter_rows(min_row=2, values_only=True))
    assert [row[1] for row in dropped[:-1]] == ["FA-12"]
    # the consolidated budget against the one the first COPIL validated, in both
    assert summary["Validé en COPIL du 25/01/2024"] == 1035000
    assert "Validé en COPIL du 25/01/2024\u00a0: 1\u202f035\u202f000,00\u00a0€" in mail.text()
    assert "Écart (prévu consolidé − validé en COPIL)" in mail.text()
    by_action = list(workbook["Par action"].iter_rows(values_only=True))
    header, totals = by_action[0], by_action[-1]
    assert totals[0] == "Total"
    assert Decimal(str(totals[header.index("Prévu total")])) == planned
    assert f"Prévu total\u00a0: {format_eur(planned)}" in mail.text()


def test_funding_goes_year_by_year_never_above_the_plan_with_dossiers_filed(
    demo_run: DemoRun,
) -> None:
    b = BudgetLine.__table__.c  # type: ignore[attr-defined]
    f = Funding.__table__.c  # type: ignore[attr-defined]
    a = ActionSheet.__table__.c  # type: ignore[attr-defined]
    with demo_run.engine.connect() as conn:
        planned = {
            (number, year): amount
            for number, year, amount in conn.execute(
                sa.select(a.number, b.year, sa.func.sum(b.amount))
                .join(ActionSheet, a.id == b.action_id)
                .group_by(a.number, b.year)
            )
        }
        rows = conn.execute(
            sa.select(a.number, f.year, f.granted, f.paid, f.dossier_due, f.dossier_filed_on).join(
                ActionSheet, a.id == f.action_id
            )
        ).all()
    granted: dict[tuple[str, int], Decimal] = {}
    for row in rows:
        granted[(row.number, row.year)] = granted.get((row.number, row.year), 0) + row.granted
    assert all(g <= planned.get(key, 0) for key, g in granted.items()), granted
    # multi-year actions are funded in each of their years (FA-01: 2024 and 2025)
    assert granted[("FA-01", 2024)] == planned[("FA-01", 2024)]
    assert granted[("FA-01", 2025)] == planned[("FA-01", 2025)]
    # payments as they go: not everything is paid at once
    assert any(row.paid < row.granted for row in rows)
    assert any(row.paid == row.granted > 0 for row in rows)
    # every dossier due has been filed, and the exported plan carries the date
    assert all(row.dossier_filed_on for row in rows if row.dossier_due)


def test_the_output_tells_the_story_and_lists_the_emails_and_files_it_wrote(
    demo_run: DemoRun,
) -> None:
    out = demo_run.output
    for month in ("janvier 2024", "juin 2024", "décembre 2024", "janvier 2025"):
        assert f"\n{month}\n" in out
    assert "budget 2024 validé : 1 035 000,00 €" in out.replace("\u202f", " ").replace(
        "\u00a0", " "
    )
    assert "FA-12 abandonnée" in out and "FA-05 terminée" in out
    assert "ajournée FA-10" in out and "révision demandée FA-09" in out

    counts = Counter(e.kind for e in demo_run.emails)
    labels = {
        "reminder": "Rappels aux pilotes",
        "escalation": "Alertes au chargé de mission",
        "digest": "Synthèses avant COPIL",
        "decision-record": "Relevés de décisions",
        "minutes-reminder": "Rappels du compte rendu",
        "budget": "Budget consolidé",
        # The notices of the COPIL decisions and fundings, enqueued with them (message bus).
        "next-steps": "Suites d'une validation",
        "revision": "Révisions demandées",
        "deferral": "Ajournements",
        "kickoff": "Avis de lancement",
    }
    assert set(counts) == set(labels)
    for kind, label in labels.items():
        assert re.search(rf"{label}\s*│\s*{counts[kind]} │", out), label
    assert re.search(rf"Total\s*│\s*{len(demo_run.emails)} │", out)

    outbox = demo_run.folder / "outbox"
    written = [
        demo_run.folder / "tiflow-demo.db",
        outbox,
        demo_run.folder / "reports" / "budget-2024-grand-est-touraine-v1.xlsx",
        demo_run.folder / "reports" / "budget-2024-grand-est-touraine-v1.csv",
    ]
    for path in written:
        assert f" : {path}\n" in out
        assert path.exists()
    listed = re.findall(r"^\s+(\S+\.eml)$", out, flags=re.MULTILINE)
    assert listed and all((outbox / name).is_file() for name in listed)
    kinds = {name.split("_")[1].split(".")[0] for name in listed}
    assert kinds == {"digest", "reminder", "escalation", "budget"}
    assert "Plan d'actions au 2 janvier 2025" in out and "FA-12" in out
