"""Who is signed in, what they may do in each territory, and THE table of routes.

`ROUTES` declares, for every route of the application, the roles that may use it; the guard
(`tiflow.web.app.guard`) reads it for every request, before the page's code runs, and refuses
what the table does not allow (default: refused). The tests are generated from the same table.

Refusals never leak: a territory the person has no role in answers 404 (as if it did not
exist), a page of their own territory their role does not open answers 403. A pilot's write
routes are further limited to the actions they pilot; COPIL members and national readers write
nothing (checked when this module is imported).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from models.vocabulary import Role

COORDINATOR, PILOT = Role.COORDINATOR, Role.PILOT
COPIL_MEMBER, NATIONAL_READER = Role.COPIL_MEMBER, Role.NATIONAL_READER


class Scope(StrEnum):
    PUBLIC = "public"  # anybody, signed in or not
    SIGNED_IN = "signed_in"  # any signed-in person
    TERRITORY = "territory"  # path has {territory}
    ACTION = "action"  # path has {territory} and {number}
    ACTION_ID = "action_id"  # path has {action_id} (links in e-mails)
    COPIL = "copil"  # path has {territory} and {copil_id}


@dataclass(frozen=True)
class Rule:
    scope: Scope
    roles: frozenset[Role] = frozenset()
    write: bool = False  # changes something: a pilot only on the actions they pilot


def _rule(scope: Scope, *roles: Role, write: bool = False) -> Rule:
    return Rule(scope, frozenset(roles), write)


PLAN_READERS = (COORDINATOR, PILOT, COPIL_MEMBER, NATIONAL_READER)
COPIL_READERS = (COORDINATOR, COPIL_MEMBER, NATIONAL_READER)
PROGRESS_WRITERS = (COORDINATOR, PILOT)

# Route name (the FastAPI route's `name`) → who may use it. Every route of the application
# must be here; tests/web/test_route_roles.py fails on a route missing from this table.
ROUTES: dict[str, Rule] = {
    "health": _rule(Scope.PUBLIC),
    "static": _rule(Scope.PUBLIC),
    "sign_in_form": _rule(Scope.PUBLIC),
    "sign_in_request": _rule(Scope.PUBLIC, write=True),
    "sign_in_link": _rule(Scope.PUBLIC),
    "sign_in_confirm": _rule(Scope.PUBLIC, write=True),
    "sign_out": _rule(Scope.SIGNED_IN, write=True),
    "home": _rule(Scope.SIGNED_IN),
    "my_actions": _rule(Scope.TERRITORY, COORDINATOR, PILOT),
    "plan": _rule(Scope.TERRITORY, *PLAN_READERS),
    "action": _rule(Scope.ACTION, *PLAN_READERS),
    "action_link": _rule(Scope.ACTION_ID, *PLAN_READERS),
    "progress_note": _rule(Scope.ACTION, *PROGRESS_WRITERS, write=True),
    "progress_milestone": _rule(Scope.ACTION, *PROGRESS_WRITERS, write=True),
    "progress_indicator": _rule(Scope.ACTION, *PROGRESS_WRITERS, write=True),
    "copils": _rule(Scope.TERRITORY, *COPIL_READERS),
    "copil": _rule(Scope.COPIL, *COPIL_READERS),
    # Import and export of the plan (tiflow/web/imports.py)
    "plan_import": _rule(Scope.TERRITORY, COORDINATOR),
    "plan_upload": _rule(Scope.TERRITORY, COORDINATOR, write=True),
    "plan_import_preview": _rule(Scope.TERRITORY, COORDINATOR),
    "plan_import_confirm": _rule(Scope.TERRITORY, COORDINATOR, write=True),
    "plan_export": _rule(Scope.TERRITORY, COORDINATOR),
    "plan_template": _rule(Scope.TERRITORY, COORDINATOR),
    # The budget's versions (tiflow/web/budget.py): read by the COPIL's readers too
    "budget": _rule(Scope.TERRITORY, *COPIL_READERS),
    "budget_file": _rule(Scope.TERRITORY, *COPIL_READERS),
    "budget_compare": _rule(Scope.TERRITORY, *COPIL_READERS),
    "budget_consolidate": _rule(Scope.TERRITORY, COORDINATOR, write=True),
    # Flows started by hand and their runs, through Prefect (tiflow/web/runs.py)
    "runs": _rule(Scope.TERRITORY, COORDINATOR),
    "run_form": _rule(Scope.TERRITORY, COORDINATOR),
    "run_start": _rule(Scope.TERRITORY, COORDINATOR, write=True),
    # The plan at a glance (tiflow/web/dashboard.py) and its charts as PNG.
    "dashboard": _rule(Scope.TERRITORY, *COPIL_READERS),
    "dashboard_chart": _rule(Scope.TERRITORY, *COPIL_READERS),
    # Editing the plan (tiflow/web/editing.py): the coordinator only.
    "action_new": _rule(Scope.TERRITORY, COORDINATOR),
    "action_create": _rule(Scope.TERRITORY, COORDINATOR, write=True),
    "action_edit": _rule(Scope.ACTION, COORDINATOR),
    "action_save": _rule(Scope.ACTION, COORDINATOR, write=True),
    "action_funding": _rule(Scope.ACTION, COORDINATOR, write=True),
    "action_propose": _rule(Scope.ACTION, COORDINATOR, write=True),
    # The pilot's « dossier déposé » form (issue 15), through the funding use case.
    "progress_dossier": _rule(Scope.ACTION, *PROGRESS_WRITERS, write=True),
    # The coordinator's COPIL (tiflow/web/copil_admin.py) and sent mail (tiflow/web/mail.py).
    # Order matters to the generated role test: the routes that write a COPIL come last.
    "mail_list": _rule(Scope.TERRITORY, COORDINATOR),
    "mail_message": _rule(Scope.TERRITORY, COORDINATOR),
    "mail_resend": _rule(Scope.TERRITORY, COORDINATOR, write=True),
    "copil_record": _rule(Scope.COPIL, *COPIL_READERS),
    "copil_dossier": _rule(Scope.COPIL, *COPIL_READERS),
    "copil_prepare": _rule(Scope.COPIL, COORDINATOR),
    "copil_digest_html": _rule(Scope.COPIL, COORDINATOR),
    "copil_decisions_form": _rule(Scope.COPIL, COORDINATOR),
    "copil_new": _rule(Scope.TERRITORY, COORDINATOR),
    "copil_decisions": _rule(Scope.COPIL, COORDINATOR, write=True),
    "copil_schedule": _rule(Scope.TERRITORY, COORDINATOR, write=True),
    # One-click unsubscribe (RFC 8058): the signed token in the path is the authorisation,
    # and stands for the CSRF token (a mail client's POST carries none).
    "unsubscribe_page": _rule(Scope.PUBLIC),
    "unsubscribe": _rule(Scope.PUBLIC),
    # A person's calendar feed: its secret token (revocable) opens it, for calendar apps.
    "calendar_feed": _rule(Scope.PUBLIC),
    "my_preferences": _rule(Scope.SIGNED_IN),
    "my_preferences_save": _rule(Scope.SIGNED_IN, write=True),
    "my_absence_save": _rule(Scope.SIGNED_IN, write=True),
    # The coordinator sets a person's preferences on their request (recorded with who did it).
    "person_preferences": _rule(Scope.TERRITORY, COORDINATOR),
    "person_preferences_save": _rule(Scope.TERRITORY, COORDINATOR, write=True),
    "person_absence_end": _rule(Scope.TERRITORY, COORDINATOR, write=True),
    "my_absence_end": _rule(Scope.SIGNED_IN, write=True),
    # The territory's people, each linked to their preferences page.
    "people": _rule(Scope.TERRITORY, COORDINATOR),
}

# Roles that never write, whatever a later route says.
READ_ONLY_ROLES = frozenset({COPIL_MEMBER, NATIONAL_READER})
for _name, _r in ROUTES.items():
    if _r.write and _r.roles & READ_ONLY_ROLES:
        raise AssertionError(f"route {_name}: COPIL members and national readers write nothing")


@dataclass(frozen=True)
class Principal:
    """The signed-in person: one e-mail address, possibly known in several territories."""

    email: str
    name: str
    session_token: str  # the session's random part: holder of its CSRF token
    roles: dict[int, frozenset[Role]] = field(default_factory=dict)  # territory id → roles
    person_ids: dict[int, int] = field(default_factory=dict)  # territory id → person id

    @property
    def national(self) -> bool:
        return any(NATIONAL_READER in r for r in self.roles.values())

    def roles_in(self, territory_id: int) -> frozenset[Role]:
        roles = self.roles.get(territory_id, frozenset())
        return roles | {NATIONAL_READER} if self.national else roles

    def sees(self, territory_id: int) -> bool:
        return bool(self.roles_in(territory_id))


class Refusal(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


NOT_FOUND = "Page introuvable, ou réservée à d'autres personnes."


def check(
    rule: Rule,
    principal: Principal,
    territory_id: int | None,
    pilot_id: int | None = None,
) -> frozenset[Role]:
    """The roles that open this page for `principal`; raises `Refusal` (404/403) otherwise.

    `pilot_id` is the pilot of the action the route writes to (action routes)."""
    if rule.scope is Scope.SIGNED_IN or territory_id is None:
        return frozenset()
    held = principal.roles_in(territory_id)
    if not held:
        raise Refusal(404, NOT_FOUND)
    granting = held & rule.roles
    if not granting:
        raise Refusal(403, "Votre rôle dans ce territoire ne donne pas accès à cette page.")
    if rule.write and granting == {PILOT}:
        own = principal.person_ids.get(territory_id)
        if own is None or pilot_id != own:
            raise Refusal(
                403, "Seul le pilote de l'action (ou le chargé de mission) peut la mettre à jour."
            )
    return granting


def may_write(rule: Rule, principal: Principal, territory_id: int, pilot_id: int | None) -> bool:
    """Whether the page should show a write form (the server checks again on submit)."""
    try:
        check(rule, principal, territory_id, pilot_id)
    except Refusal:
        return False
    return True
