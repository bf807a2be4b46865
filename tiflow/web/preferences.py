"""The one-click unsubscribe page (RFC 8058) a message's ``List-Unsubscribe`` leads to.

The link's signed token (:func:`models.preferences.unsubscribe_token`, signed with
TIFLOW_WEB_SECRET_KEY) names one person and one kind of message: it opens that one
preference without a sign-in, and nothing else. A mail client's one-click ``POST`` with
``List-Unsubscribe=One-Click`` switches it off at once; a person following the link sees the
page (a ``GET`` changes nothing: link scanners open links) and chooses never, or a daily or
weekly summary. The token stands for the CSRF token on this route: it is secret, tied to the
change, and a forged form cannot know it.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from sqlmodel import col, select

from flows.usecases.bus import unit_of_work
from flows.usecases.calendar_feed import feed_ics
from flows.usecases.preferences import (
    choices_of,
    coming_absences,
    end_absence,
    offered_channels,
    record_absence,
    set_preference,
)
from models.preferences import (
    CONVOCATION_REASON,
    DEFAULT_HOUR,
    EMAIL,
    ESCALATION_REASON,
    WEEKDAYS,
    Category,
    Choice,
    Frequency,
    PersonAbsence,
    PersonPreferenceChange,
    PreferenceError,
    read_unsubscribe_token,
)
from models.tables import Person, PersonRole
from models.uow import UnitOfWork
from models.vocabulary import Role
from tiflow.web.access import NOT_FOUND, Refusal
from tiflow.web.app import Context, Guarded, add_route, page, redirect

PATH = "/preferences/desabonnement/{token}"
PERSON_PATH = "/t/{territory}/personnes/{person_id}/preferences"
PERSON_ABSENCE_END = "/t/{territory}/personnes/{person_id}/absences/{absence_id}/fin"
MY_ABSENCE_END = "/mes-preferences/absence/{absence_id}/fin"
INVALID = "Lien de désabonnement invalide : ouvrez le lien d'un e-mail récent de tiflow."


def register(router: FastAPI) -> None:
    add_route(router, PATH, unsubscribe_page, name="unsubscribe_page")
    add_route(router, PATH, unsubscribe, name="unsubscribe", methods=["POST"])
    add_route(router, "/calendrier/{token}.ics", calendar, name="calendar_feed")
    add_route(router, "/mes-preferences", my_preferences, name="my_preferences")
    add_route(
        router, "/mes-preferences", save_my_preferences, name="my_preferences_save",
        methods=["POST"],
    )  # fmt: skip
    add_route(
        router, "/mes-preferences/absence", save_my_absence, name="my_absence_save",
        methods=["POST"],
    )  # fmt: skip
    add_route(
        router, MY_ABSENCE_END, end_my_absence, name="my_absence_end", methods=["POST"],
    )  # fmt: skip
    add_route(router, "/t/{territory}/personnes", people_page, name="people")
    add_route(router, PERSON_PATH, person_preferences, name="person_preferences")
    add_route(
        router, PERSON_ABSENCE_END, end_person_absence, name="person_absence_end",
        methods=["POST"],
    )  # fmt: skip
    add_route(
        router, PERSON_PATH, save_person_preferences, name="person_preferences_save",
        methods=["POST"],
    )  # fmt: skip


def calendar(ctx: Guarded) -> Response:
    """A person's private calendar feed: the secret token in the path opens it (revocable);
    serving it records each event's facts, so SEQUENCE grows when a date moves."""
    with unit_of_work(ctx.engine) as uow:
        ics = feed_ics(uow, ctx.request.path_params["token"])
        if ics is None:
            raise Refusal(404, "Calendrier introuvable ou révoqué.")
        uow.commit()
    return Response(ics, media_type="text/calendar; charset=utf-8")


def my_preferences(ctx: Guarded) -> HTMLResponse:
    """The signed-in person's own page: every kind of message, and what cannot be switched
    off (with the reason)."""
    return _own_page(ctx, None)


def save_my_preferences(ctx: Guarded) -> HTMLResponse:
    """One kind of message at a time; a person known in several territories (one address)
    changes it for each of them."""
    assert ctx.principal is not None
    try:
        category = Category(ctx.form.get("categorie", ""))
        choice = _choice(ctx.form)
        summaries = []
        with unit_of_work(ctx.engine) as uow:
            for person_id in sorted(set(ctx.principal.person_ids.values())):
                person = uow.session.get_one(Person, person_id)
                changed = set_preference(
                    uow, person, category, choice, actor=ctx.principal.name, via="web"
                )
                summaries.append(changed.summary())
            uow.commit()
    except (ValueError, PreferenceError) as exc:
        message = str(exc) if isinstance(exc, PreferenceError) else "Type de message inconnu."
        raise Refusal(400, message) from None
    return _own_page(ctx, summaries[0] if summaries else None)


def save_my_absence(ctx: Guarded) -> HTMLResponse:
    """An absence (du, au), its delegate (by e-mail, in each of the person's territories) and
    whether reminders wait for the return instead."""
    assert ctx.principal is not None
    summaries = []
    try:
        starts_on, ends_on = _day(ctx.form, "du"), _day(ctx.form, "au")
        hold = ctx.form.get("attendre") == "oui"
        wanted = ctx.form.get("suppleant", "").strip().lower()
        with unit_of_work(ctx.engine) as uow:
            for territory_id, person_id in sorted(ctx.principal.person_ids.items()):
                person = uow.session.get_one(Person, person_id)
                delegate = _delegate(uow, territory_id, wanted) if wanted else None
                summaries.append(
                    record_absence(
                        uow, person, starts_on, ends_on, delegate=delegate, hold=hold,
                        actor=ctx.principal.name,
                    )
                )  # fmt: skip
            uow.commit()
    except PreferenceError as exc:
        raise Refusal(400, str(exc)) from None
    return _own_page(ctx, summaries[0] if summaries else None)


def end_my_absence(ctx: Guarded) -> HTMLResponse:
    """Cancel one of one's absences (no « au ») or shorten it to end on « au »."""
    assert ctx.principal is not None
    try:
        with unit_of_work(ctx.engine) as uow:
            absence = _absence_of(ctx, uow, set(ctx.principal.person_ids.values()))
            person = uow.session.get_one(Person, absence.person_id)
            text = end_absence(
                uow, person, int(absence.id or 0), ends_on=_new_end(ctx.form),
                actor=ctx.principal.name, via="web",
            )  # fmt: skip
            uow.commit()
    except PreferenceError as exc:
        raise Refusal(400, str(exc)) from None
    return _own_page(ctx, text)


def end_person_absence(ctx: Guarded) -> Response:
    """The coordinator cancels or shortens a person's absence on their request."""
    assert ctx.principal is not None and ctx.territory is not None
    try:
        with unit_of_work(ctx.engine) as uow:
            person = _person_of(ctx, uow)
            absence = _absence_of(ctx, uow, {person.id})
            actor = f"{ctx.principal.name} (à la demande de {person.full_name})"
            end_absence(
                uow,
                person,
                int(absence.id or 0),
                ends_on=_new_end(ctx.form),
                actor=actor,
                via="web",
            )
            uow.commit()
            person_id = person.id
    except PreferenceError as exc:
        raise Refusal(400, str(exc)) from None
    url = f"/t/{ctx.territory.code}/personnes/{person_id}/preferences"
    return redirect(ctx, f"{url}?enregistre=absence")


def _absence_of(ctx: Context, uow: UnitOfWork, people: set[int | None]) -> PersonAbsence:
    """The absence the path names, if it belongs to one of ``people`` (404 otherwise)."""
    raw = str(ctx.request.path_params["absence_id"])
    found = uow.session.get(PersonAbsence, int(raw)) if raw.isdigit() else None
    if found is None or found.id is None or found.person_id not in people:
        raise Refusal(404, NOT_FOUND)
    return found


def _new_end(form: dict[str, str]) -> date | None:
    """The shortened absence's last day, or None: cancel it."""
    if not form.get("au", "").strip():
        return None
    return _day(form, "au")


def people_page(ctx: Guarded) -> HTMLResponse:
    """The territory's people, for the coordinator: each one's roles and the way to their
    preferences and absences (set on their request)."""
    assert ctx.territory is not None
    with unit_of_work(ctx.engine) as uow:
        assert ctx.territory.id is not None
        people = uow.repo.people(ctx.territory.id)
        roles: dict[int, list[str]] = {}
        for person_id, role in uow.session.exec(
            select(PersonRole.person_id, PersonRole.role).where(
                col(PersonRole.person_id).in_([p.id for p in people])
            )
        ):
            roles.setdefault(person_id, []).append(Role(role).label)
        rows = [
            (p.id, p.full_name, p.email, ", ".join(sorted(roles.get(p.id or 0, []))))
            for p in people
        ]
    return page(ctx, "people.html", people=rows)


def _day(form: dict[str, str], field: str) -> date:
    try:
        return date.fromisoformat(form.get(field, ""))
    except ValueError:
        label = "date de départ (du)" if field == "du" else "date de retour (au)"
        raise PreferenceError(f"Absence : {label} manquante ou invalide.") from None


def _delegate(uow: UnitOfWork, territory_id: int, email: str) -> Person:
    found = uow.session.exec(
        select(Person).where(Person.territory_id == territory_id, Person.email == email)
    ).first()
    if found is None:
        raise PreferenceError(f"Absence : suppléant « {email} » inconnu dans votre territoire.")
    return found


def person_preferences(ctx: Guarded) -> HTMLResponse:
    """The coordinator's page for one person of the territory: their choices, set on their
    request, and the history of changes (who, when, through what)."""
    saved = ctx.request.query_params.get("enregistre")
    return _person_page(ctx, "C'est enregistré" if saved else None)


def save_person_preferences(ctx: Guarded) -> Response:
    """One kind of message for the person, recorded with the coordinator's name."""
    assert ctx.principal is not None and ctx.territory is not None
    try:
        category = Category(ctx.form.get("categorie", ""))
        choice = _choice(ctx.form)
        with unit_of_work(ctx.engine) as uow:
            person = _person_of(ctx, uow)
            actor = f"{ctx.principal.name} (à la demande de {person.full_name})"
            set_preference(uow, person, category, choice, actor=actor, via="web")
            uow.commit()
            person_id = person.id
    except (ValueError, PreferenceError) as exc:
        message = str(exc) if isinstance(exc, PreferenceError) else "Type de message inconnu."
        raise Refusal(400, message) from None
    url = f"/t/{ctx.territory.code}/personnes/{person_id}/preferences"
    return redirect(ctx, f"{url}?enregistre={category.value}")


def _person_of(ctx: Context, uow: UnitOfWork) -> Person:
    """The person the path names, in the path's territory (404 otherwise)."""
    assert ctx.territory is not None
    raw = str(ctx.request.path_params["person_id"])
    person = uow.session.get(Person, int(raw)) if raw.isdigit() else None
    if person is None or person.territory_id != ctx.territory.id:
        raise Refusal(404, NOT_FOUND)
    return person


def _person_page(ctx: Context, done: str | None) -> HTMLResponse:
    with unit_of_work(ctx.engine) as uow:
        person = _person_of(ctx, uow)
        assert person.id is not None
        choices = choices_of(uow, person.id)
        history = uow.session.exec(
            select(PersonPreferenceChange)
            .where(PersonPreferenceChange.person_id == person.id)
            .order_by(col(PersonPreferenceChange.id).desc())
            .limit(50)
        ).all()
        changes = [
            (c.at, Category(c.category).label, _described(c), c.actor, c.via) for c in history
        ]
        name, person_id = person.full_name, person.id
        absences = coming_absences(uow, person.id)
    return page(
        ctx,
        "person_preferences.html",
        name=name,
        person_id=person_id,
        choices=choices,
        **_form_choices(),
        changes=changes,
        absences=absences,
        done=done,
    )


def _form_choices() -> dict[str, Any]:
    """What a preferences form offers: the frequencies, the days, the operator's channels."""
    return {
        "frequencies": list(Frequency),
        "weekdays": WEEKDAYS,
        "channels": sorted(offered_channels()),
    }


def _described(change: PersonPreferenceChange) -> str:
    choice = Choice(Frequency(change.frequency), change.weekday, change.hour, change.channel)
    return choice.describe_all()


def _own_page(ctx: Context, done: str | None) -> HTMLResponse:
    assert ctx.principal is not None
    ids = sorted(set(ctx.principal.person_ids.values()))
    if not ids:
        raise Refusal(404, INVALID)
    with unit_of_work(ctx.engine) as uow:
        choices = choices_of(uow, ids[0])
        absences = coming_absences(uow, ids[0])
    return page(
        ctx,
        "my_preferences.html",
        choices=choices,
        **_form_choices(),
        obligations=[ESCALATION_REASON, CONVOCATION_REASON],
        absences=absences,
        done=done,
    )


def _target(ctx: Context) -> tuple[int, Category]:
    found = read_unsubscribe_token(ctx.web.secret_key, ctx.request.path_params["token"])
    if found is None:
        raise Refusal(404, INVALID)
    return found


def unsubscribe_page(ctx: Guarded) -> HTMLResponse:
    person_id, category = _target(ctx)
    with unit_of_work(ctx.engine) as uow:
        person = uow.session.get(Person, person_id)
        if person is None:
            raise Refusal(404, INVALID)
        current = choices_of(uow, person_id)[category]
        name = person.full_name
    return page(
        ctx,
        "unsubscribe.html",
        name=name,
        category=category,
        current=current,
        frequencies=list(Frequency),
        weekdays=WEEKDAYS,
        done=None,
    )


def unsubscribe(ctx: Guarded) -> HTMLResponse | PlainTextResponse:
    person_id, category = _target(ctx)
    one_click = ctx.form.get("List-Unsubscribe") == "One-Click"
    try:
        choice = Choice(Frequency.NEVER) if one_click else _choice(ctx.form)
        with unit_of_work(ctx.engine) as uow:
            person = uow.session.get(Person, person_id)
            if person is None:
                raise Refusal(404, INVALID)
            # This page offers no channel: the person's own stays as it is.
            choice = replace(choice, channel=choices_of(uow, person_id)[category].channel)
            changed = set_preference(
                uow, person, category, choice, actor=person.full_name, via="désabonnement"
            )
            uow.commit()
    except PreferenceError as exc:
        raise Refusal(400, str(exc)) from None
    if one_click:  # a mail client, not a person: a short answer is enough
        return PlainTextResponse(f"Préférence enregistrée : {changed.summary()}")
    return page(
        ctx,
        "unsubscribe.html",
        name=changed.person,
        category=category,
        current=choice,
        frequencies=list(Frequency),
        weekdays=WEEKDAYS,
        done=changed.summary(),
    )


def _choice(form: dict[str, str]) -> Choice:
    try:
        frequency = Frequency(form.get("frequence", Frequency.NEVER.value))
        weekday = int(form["jour"]) if frequency is Frequency.WEEKLY else None
        hour = int(form.get("heure") or DEFAULT_HOUR)
    except (ValueError, KeyError):
        raise PreferenceError(
            "Formulaire incomplet : choisissez la fréquence, le jour et l'heure."
        ) from None
    # A channel is one of the operator's tags (checked by set_preference), never a URL.
    return Choice(frequency, weekday, hour, form.get("canal", "").strip() or EMAIL)
