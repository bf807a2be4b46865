"""Every kind of e-mail the demo year sends, read as its recipient would: French typography in
the subject, the text part and the HTML part's text (issue 14, point 7)."""

from __future__ import annotations

import re

from tests.demo.conftest import DemoRun, Eml

# A plain (breaking) space where French typography wants a no-break one.
PLAIN_SPACE = re.compile(r" [:;?!](?=\s|$)|« | »")
# An amount with a hyphen-minus: "-1 200,00 €" (a true minus sign U+2212 is expected).
HYPHEN_AMOUNT = re.compile(r"(?<![\w-])-\d[\d\u202f\u00a0 ]*(?:,\d+)?\u00a0€")
HTML_PROSE = re.compile(r"<(style|script)\b.*?</\1\s*>|<[^>]*>", re.IGNORECASE | re.DOTALL)


def _html_text(mail: Eml) -> str:
    part = mail.message.get_body(("html",))
    assert part is not None, mail.path.name
    return HTML_PROSE.sub("\n", str(part.get_content()))


def _nested_guillemets(text: str) -> bool:
    depth = 0
    for char in text:
        depth += char == "«"
        if depth > 1:
            return True
        depth -= char == "»" and depth > 0
    return False


def _problems(where: str, text: str) -> list[str]:
    found = [
        f"{where}: plain space {m.group()!r} in {text[max(0, m.start() - 30) : m.end() + 10]!r}"
        for m in PLAIN_SPACE.finditer(text)
    ]
    found += [f"{where}: hyphen amount {m.group()!r}" for m in HYPHEN_AMOUNT.finditer(text)]
    if _nested_guillemets(text):
        found.append(f"{where}: « inside « »")
    return found


def test_every_kind_of_email_is_typeset_in_french(demo_run: DemoRun) -> None:
    kinds = {mail.kind for mail in demo_run.emails}
    assert {"reminder", "escalation", "digest", "budget"} <= kinds
    problems = []
    for mail in demo_run.emails:
        assert mail.subject and mail.text(), mail.path.name
        problems += _problems(f"{mail.path.name} subject", mail.subject)
        problems += _problems(f"{mail.path.name} text", mail.text())
        problems += _problems(f"{mail.path.name} html", _html_text(mail))
    assert problems == [], "\n".join(problems[:20])
    # What the typography is for: the no-break spaces are there, not only the plain ones gone.
    everything = "\n".join(m.subject + m.text() for m in demo_run.emails)
    assert "\u00a0:" in everything and "«\u00a0" in everything and "\u00a0»" in everything


def test_the_checks_see_what_they_look_for() -> None:
    assert _problems("x", "Rappel : FA-07") and _problems("x", "« Plateforme RH »")
    assert _problems("x", "écart -1\u202f200,00\u00a0€")
    assert _problems("x", "«\u00a0Tiers-lieu «\u00a0Rubixco\u00a0»\u00a0»")
    assert not _problems("x", "Rappel\u00a0: «\u00a0FA-07\u00a0» écart \u22121\u202f200,00\u00a0€")
