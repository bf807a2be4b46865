"""RFC 2047 subjects that keep every space (issue 14 point 7), and the extra headers a
producer adds to a message (``List-Unsubscribe``…), rendered once into the MIME."""

from __future__ import annotations

from email import policy
from email.parser import BytesParser

import pytest

from notifications.message import OutgoingEmail, build_mime, clean_subject, render_email

SENDER = "Territoire d'industrie Grand Est Touraine <tiflow@example.org>"
NBSP, NNBSP = "\u00a0", "\u202f"
SUBJECTS = [
    # « » with narrow no-break spaces inside, a no-break space before : ; ? !
    f"Rappel{NBSP}: échéance «{NNBSP}Plateforme Ressources humaines mutualisée entre les"
    f" entreprises du Val d'Amboise{NNBSP}» dans 7 jours",
    f"COPIL du jeudi 20 juin 2024 à 10 h{NBSP}: ordre du jour, «{NNBSP}Tiers-lieu Rubixco"
    f"{NNBSP}» et «{NNBSP}Usine-témoin{NNBSP}» ; qui présente{NNBSP}?",
    f"«{NBSP}Où en êtes-vous{NNBSP}?{NBSP}» — FA-07 «{NNBSP}Écologie industrielle et"
    f" territoriale : synergies entre les zones d'activités de Château-Renault et"
    f" d'Amboise{NNBSP}» (Grand Est Touraine){NNBSP}!",
    "Escalade : 12 échéances en retard pour « FA-03 », « FA-10 » et « FA-12 »  »",
    "a" * 70 + " » " + "é" * 40 + " « b »",
]


def parsed_subject(subject: str) -> str:
    email = OutgoingEmail(to=["Élodie Brûlé <e.brule@cc-tev.fr>"], subject=subject, text="x")
    raw = render_email(email, SENDER).copy_for(email.to[0])
    head = raw.split(b"\r\n\r\n", 1)[0]
    head.decode("ascii")  # only encoded words in headers
    assert all(len(line) <= 78 for line in head.split(b"\r\n")), head
    return str(BytesParser(policy=policy.default).parsebytes(raw)["Subject"])


@pytest.mark.parametrize("subject", SUBJECTS)
def test_long_french_subjects_come_back_identical_spaces_and_no_break_spaces_included(
    subject: str,
) -> None:
    assert parsed_subject(subject) == clean_subject(subject)
    assert NBSP not in subject or NBSP in parsed_subject(subject)


def test_no_break_spaces_are_kept_and_line_breaks_still_collapsed() -> None:
    assert (
        clean_subject(f"Rappel{NBSP}:\r\n«{NNBSP}FA-07{NNBSP}»")
        == f"Rappel{NBSP}: «{NBSP}FA-07{NBSP}»"
    )


def test_extra_headers_are_rendered_once_into_every_copy() -> None:
    email = OutgoingEmail(
        to=["marie@example.org", "Jean Martin <jean@example.org>"],
        subject="Rappel",
        text="Bonjour",
        key="reminder.abc",
        headers={
            "list-unsubscribe": "<https://tiflow.example/preferences/desabonnement/t0k3n>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
    )
    rendered = render_email(email, SENDER)
    for recipient in email.to:
        message = BytesParser(policy=policy.default).parsebytes(rendered.copy_for(recipient))
        assert message["List-Unsubscribe"] == (
            "<https://tiflow.example/preferences/desabonnement/t0k3n>"
        )
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert message["To"] == recipient
    assert build_mime(email, SENDER)["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


@pytest.mark.parametrize(
    ("headers", "error"),
    [
        ({"List-Unsubscribe": "<https://x.example/u>\r\nBcc: intrus@example.com"}, "one printable"),
        ({"Bcc": "intrus@example.com"}, "tiflow itself"),
        ({"message-id": "<x@y>"}, "tiflow itself"),
        ({"Content-Type": "text/html"}, "tiflow itself"),
        ({"List Unsubscribe": "x"}, "invalid header name"),
        ({"List-Unsubscribe": "a", "list-unsubscribe": "b"}, "twice"),
    ],
)
def test_bad_extra_headers_are_refused(headers: dict[str, str], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        OutgoingEmail(to=["marie@example.org"], subject="Rappel", text="x", headers=headers)
