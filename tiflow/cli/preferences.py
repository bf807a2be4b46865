"""`tiflow preferences`: how tiflow reaches each person (see models/preferences.py).

* `tiflow preferences voir ADRESSE`: each kind of message with the person's choice, and their
  absences to come;
* `tiflow preferences regler ADRESSE TYPE FRÉQUENCE [--jour J] [--heure H] [--canal C]`: the
  coordinator sets a preference on the person's request (the history says who, `--par`);
* `tiflow preferences absence ADRESSE --du D --au D [--suppleant ADRESSE | --attendre]`;
* `tiflow preferences fin-absence ADRESSE [--du D] [--au D]`: cancel the next absence (the one
  starting on `--du`), or shorten it to end on `--au`;
* `tiflow preferences calendrier ADRESSE [--revoquer]`: the person's private calendar URL.
"""

from __future__ import annotations

from typing import Annotated

import sqlalchemy as sa
import typer
from rich.table import Table

from flows.usecases.bus import unit_of_work
from flows.usecases.calendar_feed import new_feed, revoke_feeds
from flows.usecases.preferences import choices_of, end_absence, record_absence, set_preference
from models.errors import TiflowError
from models.preferences import (
    DEFAULT_HOUR,
    EMAIL,
    Choice,
    PersonAbsence,
    category_from,
    frequency_of,
    weekday_of,
)
from models.settings import load_settings
from models.tables import Person
from models.uow import UnitOfWork
from notifications.fr import plural
from tiflow.cli import app, command, new_app
from tiflow.cli.common import console, database, date_option, pick_territory, today_in_paris

preferences_app = new_app("Préférences d'envoi de chaque personne : fréquence, heure, absences.")
app.add_typer(preferences_app, name="preferences")

Territoire = Annotated[
    str | None, typer.Option("--territoire", "-t", metavar="CODE", help="Code du territoire.")
]


def _person(uow: UnitOfWork, territoire: str | None, address: str) -> Person:
    territory = pick_territory(uow, territoire)
    assert territory.id is not None
    person = uow.repo.person_by_email(territory.id, address)
    if person is None:
        raise TiflowError(f"Personne inconnue dans {territory.name} : « {address} ».")
    return person


@command(preferences_app, "voir")
def show(adresse: str, territoire: Territoire = None) -> None:
    """Les préférences d'une personne et ses absences à venir."""
    with unit_of_work(database()) as uow:
        person = _person(uow, territoire, adresse)
        assert person.id is not None
        name = person.full_name
        choices = choices_of(uow, person.id)
        a = PersonAbsence.__table__.c  # type: ignore[attr-defined]
        absences = uow.session.execute(
            sa.select(a.starts_on, a.ends_on, a.delegate_id, a.hold)
            .where(
                a.person_id == person.id, a.ends_on >= today_in_paris(), a.cancelled_at.is_(None)
            )
            .order_by(a.starts_on)
        ).all()
        delegates = {
            row.delegate_id: uow.session.get_one(Person, row.delegate_id).full_name
            for row in absences
            if row.delegate_id is not None
        }
    table = Table(title=f"Préférences de {name}")
    for column in ("Type de message", "Envoi", "Canal"):
        table.add_column(column)
    for category, choice in choices.items():
        canal = "e-mail" if choice.channel == EMAIL else choice.channel
        table.add_row(category.label, choice.describe(), canal)
    console.print(table)
    for row in absences:
        to = delegates.get(row.delegate_id) if not row.hold else None
        suite = f"rappels à {to}" if to else "rappels gardés jusqu'au retour"
        console.print(f"Absence du {row.starts_on:%d/%m/%Y} au {row.ends_on:%d/%m/%Y} : {suite}")


@command(preferences_app, "regler")
def set_choice(
    adresse: str,
    type_: Annotated[
        str,
        typer.Argument(
            metavar="TYPE", help="rappels, relances, synthèses, avis ou budget (type de message)."
        ),
    ],
    frequence: Annotated[
        str,
        typer.Argument(metavar="FRÉQUENCE", help="immédiat, quotidien, hebdomadaire ou jamais."),
    ],
    jour: Annotated[
        str | None, typer.Option("--jour", help="Jour de l'envoi hebdomadaire (ex. vendredi).")
    ] = None,
    heure: Annotated[int, typer.Option("--heure", help="Heure d'envoi (Paris), 0 à 23.")] = (
        DEFAULT_HOUR
    ),
    canal: Annotated[
        str | None,
        typer.Option(
            "--canal",
            metavar="CANAL",
            help="e-mail, ou un canal « canal-… » configuré par l'exploitant (sans : inchangé).",
        ),
    ] = None,
    par: Annotated[
        str, typer.Option("--par", metavar="NOM", help="Qui fait le changement (historique).")
    ] = "ligne de commande",
    territoire: Territoire = None,
) -> None:
    """Régler une préférence à la demande de la personne (l'historique garde qui l'a fait)."""
    category = category_from(type_)
    frequency = frequency_of(frequence)
    weekday = weekday_of(jour) if jour else None
    with unit_of_work(database()) as uow:
        person = _person(uow, territoire, adresse)
        assert person.id is not None
        if canal is None:
            channel = choices_of(uow, person.id)[category].channel
        else:
            channel = EMAIL if canal.strip().lower() in {"e-mail", "email"} else canal.strip()
        choice = Choice(frequency, weekday, heure, channel)
        changed = set_preference(uow, person, category, choice, actor=par, via="cli")
        uow.commit()
    console.print(changed.summary())


@command(preferences_app, "absence")
def absence(
    adresse: str,
    du: Annotated[str, typer.Option("--du", metavar="DATE", help="Premier jour d'absence.")],
    au: Annotated[str, typer.Option("--au", metavar="DATE", help="Dernier jour d'absence.")],
    suppleant: Annotated[
        str | None,
        typer.Option("--suppleant", metavar="ADRESSE", help="Qui reçoit les rappels pendant."),
    ] = None,
    attendre: Annotated[
        bool, typer.Option("--attendre", help="Garder les rappels jusqu'au retour.")
    ] = False,
    par: Annotated[str, typer.Option("--par", metavar="NOM")] = "ligne de commande",
    territoire: Territoire = None,
) -> None:
    """Enregistrer une absence : rappels au suppléant, ou gardés jusqu'au retour."""
    starts, ends = date_option(du, "--du"), date_option(au, "--au")
    assert starts is not None and ends is not None
    with unit_of_work(database()) as uow:
        person = _person(uow, territoire, adresse)
        delegate = _person(uow, territoire, suppleant) if suppleant else None
        text = record_absence(
            uow, person, starts, ends, delegate=delegate, hold=attendre, actor=par
        )
        uow.commit()
    console.print(text)


@command(preferences_app, "fin-absence")
def end_of_absence(
    adresse: str,
    du: Annotated[
        str | None,
        typer.Option(
            "--du", metavar="DATE", help="Premier jour de l'absence visée (sans : la prochaine)."
        ),
    ] = None,
    au: Annotated[
        str | None,
        typer.Option("--au", metavar="DATE", help="Nouveau dernier jour (sans : l'annuler)."),
    ] = None,
    par: Annotated[str, typer.Option("--par", metavar="NOM")] = "ligne de commande",
    territoire: Territoire = None,
) -> None:
    """Annuler ou écourter une absence : les rappels gardés repartent normalement."""
    starts = date_option(du, "--du") if du else None
    ends = date_option(au, "--au") if au else None
    with unit_of_work(database()) as uow:
        person = _person(uow, territoire, adresse)
        a = PersonAbsence.__table__.c  # type: ignore[attr-defined]
        query = sa.select(a.id).where(
            a.person_id == person.id, a.ends_on >= today_in_paris(), a.cancelled_at.is_(None)
        )
        if starts is not None:
            query = query.where(a.starts_on == starts)
        found = uow.session.execute(query.order_by(a.starts_on).limit(1)).scalar()
        if found is None:
            when = f" commençant le {starts:%d/%m/%Y}" if starts else ""
            raise TiflowError(f"{person.full_name} : aucune absence en cours ou à venir{when}.")
        text = end_absence(uow, person, found, ends_on=ends, actor=par, via="cli")
        uow.commit()
    console.print(text)


@command(preferences_app, "calendrier")
def calendar(
    adresse: str,
    revoquer: Annotated[
        bool, typer.Option("--revoquer", help="Révoquer le calendrier, sans en créer d'autre.")
    ] = False,
    territoire: Territoire = None,
) -> None:
    """L'adresse privée du calendrier d'une personne (la précédente cesse de marcher)."""
    with unit_of_work(database()) as uow:
        person = _person(uow, territoire, adresse)
        if revoquer:
            revoked = revoke_feeds(uow, person)
            uow.commit()
            console.print(
                f"{person.full_name} : "
                + plural(revoked, "calendrier révoqué.", "calendriers révoqués.")
            )
            return
        token = new_feed(uow, person)
        name = person.full_name
        uow.commit()
    base = load_settings().web_url or "http://127.0.0.1:8000"
    console.print(f"Calendrier de {name} (à garder secret) :")
    console.print(f"{base}/calendrier/{token}.ics", soft_wrap=True)
