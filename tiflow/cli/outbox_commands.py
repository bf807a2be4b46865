"""`tiflow envois`: what the outbox holds (per person, action, kind, status), and
`tiflow envois --relancer N` to put a failed or in-doubt message back in the queue, once."""

from __future__ import annotations

from typing import Annotated, Any

import sqlalchemy as sa
import typer
from rich.markup import escape
from rich.table import Table

from flows.usecases.bus import unit_of_work
from models.outbox import DeliveryPhase, OutboxStatus
from models.tables import ActionSheet
from notifications.kinds import kind_short
from notifications.outbox import (
    IN_DOUBT_FILTER,
    backlog,
    list_messages,
    requeue_once,
    utcnow,
)
from tiflow.cli import app, command
from tiflow.cli.common import console, database, fr_instant

STATUS_CHOICES = {
    "en-attente": OutboxStatus.PENDING.value,
    "en-cours": OutboxStatus.SENDING.value,
    "envoye": OutboxStatus.SENT.value,
    "echec": OutboxStatus.FAILED.value,
    "abandonne": OutboxStatus.DROPPED.value,
    IN_DOUBT_FILTER: IN_DOUBT_FILTER,
}


@command(app, "envois")
def outbox_command(
    personne: Annotated[
        str | None,
        typer.Option("--personne", "-p", metavar="NOM", help="Nom ou adresse (une partie)."),
    ] = None,
    action: Annotated[
        str | None, typer.Option("--action", "-a", metavar="N°", help="Ex. FA-07.")
    ] = None,
    type_: Annotated[
        str | None,
        typer.Option(
            "--type", metavar="TYPE", help="reminder, escalation, digest, budget, notice…"
        ),
    ] = None,
    etat: Annotated[
        str | None,
        typer.Option(
            "--etat",
            metavar="ÉTAT",
            help="en-attente, en-cours, envoye, echec, abandonne ou incertain.",
        ),
    ] = None,
    limite: Annotated[int, typer.Option("--limite", min=1, max=5000)] = 50,
    relancer: Annotated[
        int | None,
        typer.Option(
            "--relancer",
            metavar="N",
            help="Remet en file le message n° N (en échec ou incertain), une seule fois ;"
            " la prochaine tournée (tiflow run envoi) l'envoie.",
        ),
    ] = None,
) -> None:
    """Messages de la boîte d'envoi : qui, quoi, où en est chacun ; relance d'un message."""
    engine = database()
    if relancer is not None:
        with unit_of_work(engine) as uow:
            row = requeue_once(uow, relancer)
            uow.commit()
        console.print(
            f"Message n° {relancer} ({escape(row.recipient or row.tag)}) remis en file : il"
            " partira à la prochaine tournée (tiflow run envoi), avec le même identifiant.",
            highlight=False,
        )
        return
    status = _status(etat)
    with unit_of_work(engine) as uow:
        action_ids = _actions(uow.session, action) if action else None
        rows = list_messages(
            uow.session,
            person=personne,
            action_ids=action_ids,
            kind=type_,
            status=status,
            limit=limite,
        )
        waiting = backlog(uow.session, utcnow())
    if not rows:
        console.print("Aucun message ne correspond.", highlight=False)
    else:
        console.print(_table(rows))
    console.print(f"Boîte d'envoi : {waiting.summary()}.", highlight=False)


def _status(etat: str | None) -> str | None:
    if etat is None:
        return None
    if etat not in STATUS_CHOICES:
        raise typer.BadParameter(
            f"état inconnu « {etat} » (au choix : {', '.join(STATUS_CHOICES)})",
            param_hint="'--etat'",
        )
    return STATUS_CHOICES[etat]


def _actions(session: Any, number: str) -> list[int]:
    a = ActionSheet.__table__.c  # type: ignore[attr-defined]
    ids = list(session.execute(sa.select(a.id).where(a.number == number.strip())).scalars())
    if not ids:
        raise typer.BadParameter(f"aucune action n° « {number} »", param_hint="'--action'")
    return ids


def _state(row: Any) -> str:
    if row.status == OutboxStatus.FAILED.value and row.drop_reason == "in_doubt":
        return "incertain (peut-être reçu)"
    label = OutboxStatus(row.status).label
    if row.status == OutboxStatus.SENDING.value and row.delivery_phase:
        label += f" ({DeliveryPhase(row.delivery_phase).label})"
    return label


def _when(row: Any) -> str:
    if row.sent_at is not None:
        return f"envoyé le {fr_instant(row.sent_at)}"
    if row.status == OutboxStatus.PENDING.value:
        return f"prévu le {fr_instant(row.next_attempt_at)}"
    return ""


def _table(rows: list[Any]) -> Table:
    table = Table(title="Boîte d'envoi (les plus récents d'abord)", title_justify="left")
    for header in ("N°", "Type", "Destinataire", "Objet", "État", "Essais", "Quand", "Erreur"):
        table.add_column(header, justify="right" if header in ("N°", "Essais") else "left")
    for row in rows:
        table.add_row(
            str(row.id),
            kind_short(row.kind),
            escape(row.recipient or f"canaux « {row.tag} »"),
            escape(row.subject[:60]),
            _state(row),
            str(row.attempts),
            _when(row),
            escape((row.last_error or "")[:120]),
        )
    return table
