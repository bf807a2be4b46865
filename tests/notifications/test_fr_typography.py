"""French typography helpers (notifications/fr.py): no-break spaces, guillemets never nested,
one apostrophe, a true minus sign."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from notifications import fr
from notifications.templates import FRENCH_FILTERS, render

NBSP, NNBSP = "\u00a0", "\u202f"


def test_typeset_puts_no_break_spaces_where_french_typography_wants_them() -> None:
    text = "Où en êtes-vous ? Relancé ; « Le Rubixco » : prêt ! Rendez-vous à 10:30, https://x/?a=1"
    assert fr.typeset(text) == (
        f"Où en êtes-vous{NNBSP}? Relancé{NNBSP}; «{NBSP}Le Rubixco{NBSP}»{NBSP}: prêt{NNBSP}!"
        " Rendez-vous à 10:30, https://x/?a=1"
    )
    assert fr.typeset("l’action d'Amboise") == "l'action d'Amboise"  # one apostrophe
    assert fr.typeset(fr.typeset(text)) == fr.typeset(text)  # idempotent


def test_quoted_never_nests_guillemets() -> None:
    nested = fr.typeset("Où en êtes-vous ? FA-03 « Tiers-lieu « Le Rubixco » »")
    assert nested == f"Où en êtes-vous{NNBSP}? FA-03 «{NBSP}Tiers-lieu “Le Rubixco”{NBSP}»"
    assert fr.typeset(nested) == nested
    assert fr.typeset("« a » et « b »") == f"«{NBSP}a{NBSP}» et «{NBSP}b{NBSP}»"
    assert fr.quoted("Tiers-lieu « Le Rubixco »") == f"«{NBSP}Tiers-lieu “Le Rubixco”{NBSP}»"
    assert fr.quoted("Plateforme RH") == f"«{NBSP}Plateforme RH{NBSP}»"


def test_signed_amounts_use_a_true_minus_sign() -> None:
    assert fr.signed_eur(Decimal("-60000")) == f"\u221260{NNBSP}000,00{NBSP}€"
    assert fr.signed_eur(Decimal("1200.5")) == f"+1{NNBSP}200,50{NBSP}€"
    assert fr.signed_eur(Decimal("0")) == f"0,00{NBSP}€"
    assert "-" not in fr.signed_eur(Decimal("-1"))


def test_plural_is_real_and_the_helpers_are_template_filters() -> None:
    assert [fr.plural(n, "relevé", "relevés") for n in (0, 1, 2)] == [
        "0 relevé",
        "1 relevé",
        "2 relevés",
    ]
    assert {"quoted", "signed_eur", "plural"} <= set(FRENCH_FILTERS)


def test_typeset_text_leaves_urls_and_addresses_alone() -> None:
    text = (
        "Lien : https://x.fr/a?b=1&c=’d’ ; écrire à claire.moreau@cc-tev.fr ? À 9:30 ou 14 h 30 !"
    )
    assert fr.typeset_text(text) == (
        f"Lien{NBSP}: https://x.fr/a?b=1&c=’d’{NNBSP}; écrire à claire.moreau@cc-tev.fr{NNBSP}?"
        f" À 9:30 ou 14 h 30{NNBSP}!"
    )
    assert fr.typeset_text(fr.typeset_text(text)) == fr.typeset_text(text)


def test_typeset_html_touches_text_nodes_only() -> None:
    html = (
        '<style>p { content: " ! " ; }</style><p title="a : b">Où ? « FA-07 »</p>'
        '<a href="mailto:a@b.fr?subject=Re : x">Répondre : a@b.fr</a><code>x ; y</code>'
    )
    assert fr.typeset_html(html) == (
        '<style>p { content: " ! " ; }</style>'
        f'<p title="a : b">Où{NNBSP}? «{NBSP}FA-07{NBSP}»</p>'
        f'<a href="mailto:a@b.fr?subject=Re : x">Répondre{NBSP}: a@b.fr</a><code>x ; y</code>'
    )
    assert fr.typeset_html(fr.typeset_html(html)) == fr.typeset_html(html)


@pytest.mark.parametrize("name", ["generic", "sign_in"])
def test_render_typesets_both_parts_of_every_template(name: str) -> None:
    context = {
        "generic": {
            "title": "Question : « Le Rubixco » ?",
            "paragraphs": ["Où en êtes-vous ? Relancé ; prêt !"],
            "items": ["Jalon : démonstrateur"],
        },
        "sign_in": {"territory": "", "name": "Claire", "url": "https://x.fr/s?t=1", "minutes": 15},
    }[name]
    text, html = render(name, **context)
    prose = re.sub(r"<style\b.*?</style>|<[^>]*>", "\n", html, flags=re.DOTALL)
    for part in (text, prose):
        assert not re.search(r" [:;?!](?=\s|$)|« | »", part), part
    assert "https://x.fr/s?t=1" in text or name == "generic"
    if name == "generic":
        assert f"Question{NBSP}: «{NBSP}Le Rubixco{NBSP}»{NNBSP}?" in text
        assert f"Où en êtes-vous{NNBSP}? Relancé{NNBSP}; prêt{NNBSP}!" in prose


# Pieces of HTML e-mails and of French prose, mixed at random: typeset_html does its work in
# one pass (tags, comments, verbatim elements, URLs and addresses at once); it must give what
# typesetting each text node on its own gives, whatever the document.
_PIECES = [
    "<p>", "</p>", '<a href="https://x.fr/a?b=1 : c">', "</a>", "<br>", "<!-- a : b ? -->",
    "<style>p { content: ' ! ' ; }</style>", "<code>x ; y</code>", "<PRE>a : b</PRE>", "<",
    "<Script>a ; b</SCRIPT>", "<code>", "</code>", "<!--", "-->", "<pre\n>x ?\n</pre >",
    ">", "« ", " »", "«", "»", " : ", ":", " ; ", " ? ", " !", "?", "’", "’x’", "\n", "  ",
    "Où en êtes-vous", "Rappel", "https://x.fr/?a=1", "mailto:a@b.fr?subject=Re : x",
    "claire.moreau@cc-tev.fr", "a@b", "10:30", "FA-07", "« « Le Rubixco » »", "é",
]  # fmt: skip


def _typeset_html_node_by_node(html: str) -> str:
    verbatim = re.compile(
        r"<(style|script|pre|code)\b.*?</\1\s*>|<!--.*?-->|<[^>]*>", re.IGNORECASE | re.DOTALL
    )
    out, last = [], 0
    for match in verbatim.finditer(html):
        out += [fr.typeset_text(html[last : match.start()]), match.group()]
        last = match.end()
    return "".join([*out, fr.typeset_text(html[last:])])


@settings(max_examples=300)
@given(st.lists(st.sampled_from(_PIECES), max_size=40))
def test_typeset_html_in_one_pass_is_typeset_text_on_each_text_node(pieces: list[str]) -> None:
    html = "".join(pieces)
    assert fr.typeset_html(html) == _typeset_html_node_by_node(html)
    text = html.replace("<", "")
    assert fr.typeset_text(text) == "".join(
        fr.typeset(part) if i % 2 == 0 else part
        for i, part in enumerate(re.split(f"({fr._PROTECTED.pattern})", text, flags=re.I))
    )


def _typeset_by_the_rules(text: str) -> str:
    """`fr.typeset` spelled as its rules, one regex pass each (the implementation takes
    shortcuts where a mark is absent or usual: it must give the same text)."""
    text = fr.unnest_quotes(text.replace("’", "'"))
    text = re.sub("«[ \u00a0\u202f]*", "«\u00a0", text)
    text = re.sub("[ \u00a0\u202f]*»", "\u00a0»", text)
    text = re.sub(r"[ \u00a0](?=[;!?](?:[\s»”)]|$))", NNBSP, text)
    return re.sub(r"[ \u202f](?=:(?:\s|$))", "\u00a0", text)


_MARKS = ["«", "»", ":", ";", "!", "?", " ", "  ", "\u00a0", NNBSP, "\n", "\t", "’", "”", ")"]


@settings(max_examples=500)
@given(st.lists(st.sampled_from([*_MARKS, " : ", " :", "a", "é", "10:30", "»»"]), max_size=30))
def test_typeset_gives_what_its_rules_give(pieces: list[str]) -> None:
    text = "".join(pieces)
    assert fr.typeset(text) == _typeset_by_the_rules(text)
