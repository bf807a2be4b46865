"""French typography helpers (notifications/fr.py): no-break spaces, guillemets never nested,
one apostrophe, a true minus sign."""

from __future__ import annotations

from decimal import Decimal

from notifications import fr
from notifications.templates import FRENCH_FILTERS

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
