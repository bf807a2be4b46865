"""Every e-mail of the demo year says whom a reply reaches: a ``Reply-To`` naming a person of
the territory (the coordinator, or the pilot for the funders' notices), never the no-reply
sender, and a ``mailto:`` link to that person in its HTML part (issue 14, point 3)."""

from __future__ import annotations

import sqlalchemy as sa

from models.tables import Person
from tests.demo.conftest import DemoRun


def test_every_email_of_the_year_names_a_person_to_reply_to(demo_run: DemoRun) -> None:
    people = Person.__table__.c  # type: ignore[attr-defined]
    with demo_run.engine.connect() as conn:
        known = {str(e).lower() for e in conn.execute(sa.select(people.email)).scalars()}
    assert len({mail.kind for mail in demo_run.emails}) >= 10  # every kind the year sends
    problems = []
    for mail in demo_run.emails:
        header = mail.message["Reply-To"]
        if header is None:
            problems.append(f"{mail.path.name}: no Reply-To")
            continue
        address = header.addresses[0].addr_spec.lower()
        html = mail.message.get_body(("html",))
        if address not in known:
            problems.append(f"{mail.path.name}: Reply-To {address} is nobody of the plan")
        elif html is None or f"mailto:{address}" not in str(html.get_content()).lower():
            problems.append(f"{mail.path.name}: no mailto: link to {address}")
    assert problems == [], "\n".join(problems[:20])
