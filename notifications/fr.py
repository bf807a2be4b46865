"""French formatting helpers for everything a user reads (pure functions).

Dates are shown in Europe/Paris. Relative phrases count *calendar* days: pendulum's
``diff_for_humans`` says "dans 23 heures" for tomorrow, which is wrong for a deadline.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache

import pendulum

from models.money import format_eur as format_eur  # one formatter for amounts, domain-wide
from models.money import group_thousands

PARIS = pendulum.timezone("Europe/Paris")


def _require_date(value: object, name: str) -> date:
    # datetime is a subclass of date: refuse it, its calendar day depends on the zone.
    if isinstance(value, datetime) or not isinstance(value, date):
        raise TypeError(f"{name} must be a date, not {type(value).__name__}")
    return value


@lru_cache(maxsize=8192)  # pendulum's localised format costs ~0.1 ms; pages show hundreds
def format_date(d: date) -> str:
    """``lundi 10 mars 2025``; the first of the month is written ``1er``."""
    _require_date(d, "d")
    day = "[1er]" if d.day == 1 else "D"
    return pendulum.date(d.year, d.month, d.day).format(f"dddd {day} MMMM YYYY", locale="fr")


def format_time(dt: datetime) -> str:
    """``14 h 30``, or ``9 h`` on the hour (French typographic convention)."""
    local = to_paris(dt)
    return f"{local.hour} h" if local.minute == 0 else f"{local.hour} h {local.minute:02d}"


def to_paris(dt: datetime) -> datetime:
    """Convert an aware datetime to Europe/Paris; naive datetimes are ambiguous."""
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"naive datetime {dt.isoformat()} has no time zone")
    # The standard conversion (pendulum's Timezone is a zoneinfo.ZoneInfo): pendulum 3.3 warns
    # that its own `in_timezone` will return a standard datetime in a later minor release.
    return dt.astimezone(PARIS)


def format_datetime(dt: datetime) -> str:
    """``lundi 10 mars 2025 à 14 h 30`` in Europe/Paris (naive datetimes: ValueError)."""
    local = to_paris(dt)
    return f"{format_date(local.date())} à {format_time(local)}"


def plural(n: int, one: str, many: str) -> str:
    """``1 action``, ``3 actions``, ``0 action`` (French: 0 and 1 take the singular) — never
    "action(s)"."""
    return f"{n} {one if abs(n) < 2 else many}"


# French typography (Lexique des règles typographiques de l'Imprimerie nationale): a no-break
# space (U+00A0) inside « » and before the colon, a narrow no-break space (U+202F) before ; ! ?
# — the same characters amounts already use (U+202F between thousands, U+00A0 before €).
NBSP = "\u00a0"
NNBSP = "\u202f"


_OPEN_QUOTE = re.compile(r"«[ \u00a0\u202f]*")
_CLOSE_QUOTE = re.compile(r"[ \u00a0\u202f]*»")
# A space before ; ! ? (then a space, the end, or a closing mark): narrow no-break space.
_BEFORE_HIGH = re.compile(r"[ \u00a0](?=[;!?](?:[\s»”)]|$))")
# A space before a colon that ends a clause (not « 10:30 », not « https:// »): no-break space.
_BEFORE_COLON = re.compile(r"[ \u202f](?=:(?:\s|$))")


_GUILLEMET = re.compile(r"«[ \u00a0\u202f]*|[ \u00a0\u202f]*»")


def _unnest_line(line: str) -> str:
    # « … « … » … » -> « … “…” … »: guillemets inside guillemets become English quotes.
    depth = 0

    def swap(match: re.Match[str]) -> str:
        nonlocal depth
        if match.group().startswith("«"):
            depth += 1
            return "“" if depth > 1 else match.group()
        if depth == 0:
            return match.group()  # a lone closing mark: left as written
        depth -= 1
        return "”" if depth > 0 else match.group()

    return _GUILLEMET.sub(swap, line)


def unnest_quotes(text: str) -> str:
    """Guillemets never nested: the inner « » of a line become “ ” (an action title that
    carries its own guillemets, quoted in a sentence)."""
    if text.count("«") < 2:
        return text
    return "\n".join(_unnest_line(line) for line in text.split("\n"))


# The characters `typeset` acts on: a line or a text node without any is left as it is (most
# of an e-mail: indentation, names, dates), one search instead of five substitutions.
_TYPESET_CHARS = re.compile("[«»:;!?\u2019]")


def typeset(text: str) -> str:
    """French typography on a text a person reads: no-break space inside « » and before a
    colon, narrow no-break space before ; ! ?, one apostrophe (U+0027, as everywhere in
    tiflow's texts: ’ is folded into it), guillemets never nested (`unnest_quotes`). Spaces
    are only replaced, never added (a URL's ``?`` or a time's ``:`` have none before them)."""
    # Each pass only where its mark occurs (``in`` is far cheaper than a regex pass), and
    # none of them adds or removes another pass's mark.
    text = unnest_quotes(text.replace("\u2019", "'"))
    if "«" in text:
        text = _OPEN_QUOTE.sub(f"«{NBSP}", text)
    if "»" in text:
        text = _close_quotes(text)
    if ("?" in text or "!" in text or ";" in text) and _space_before_high(text):
        text = _BEFORE_HIGH.sub(NNBSP, text)
    if ":" not in text:
        return text
    # The usual clause-ending colon, `` : ``, by a plain replace; the regex only for what is
    # left (a colon at the end of a line, after a narrow space…). Same result: a space made
    # no-break here is no longer one the regex would match, and no lookahead reads it.
    text = text.replace(" : ", f"{NBSP}: ")
    return _BEFORE_COLON.sub(NBSP, text) if " :" in text or "\u202f:" in text else text


def _space_before_high(text: str) -> bool:
    """Whether `_BEFORE_HIGH` can match at all: its space then its mark, side by side. Most
    ``;`` of an e-mail's HTML are entities (``l&#39;action``), which it never touches."""
    return (
        " ;" in text
        or " ?" in text
        or " !" in text
        or "\u00a0;" in text
        or "\u00a0?" in text
        or "\u00a0!" in text
    )


def _close_quotes(text: str) -> str:
    """``_CLOSE_QUOTE.sub(NBSP + "»", text)`` by splitting at each »: the regex, tried at every
    position of a line (a class then ``*``), was the dearest pass of `typeset`. Each » takes
    the whole run of spaces before it, which is what ``rstrip`` removes from the part before."""
    parts = text.split("»")
    last = parts.pop()
    return f"{NBSP}»".join([part.rstrip(_SPACES) for part in parts]) + f"{NBSP}»" + last


_SPACES = " \u00a0\u202f"  # the spaces `_OPEN_QUOTE` and `_CLOSE_QUOTE` take in


# What typography must never touch: URLs, e-mail addresses (a ``?`` or ``:`` in them is
# syntax, not punctuation).
_PROTECTED = re.compile(
    r"(?:https?|mailto|ftp):[^\s<>\"']+|[\w.+-]+@[\w-]+(?:\.[\w-]+)+", re.IGNORECASE
)


_PROTECTED_PARTS = re.compile(f"({_PROTECTED.pattern})", re.IGNORECASE)


def _has_scheme(lower: str) -> bool:
    """Whether a lowercase text holds a URL scheme of _PROTECTED (else: no URL in it)."""
    return "http:" in lower or "https:" in lower or "mailto:" in lower or "ftp:" in lower


@lru_cache(maxsize=16384)  # headings, labels, dates, footers: the same from one e-mail to the next
def _typeset_chunk(text: str) -> str:
    """`typeset` between the URLs and addresses of `text`; `text` itself when it holds none
    of the characters typography acts on (most lines and text nodes)."""
    if not _TYPESET_CHARS.search(text):
        return text
    if "@" not in text and not _has_scheme(text.lower()):
        return typeset(text)  # nothing to protect (the regex below tries every position)
    parts = _PROTECTED_PARTS.split(text)  # text, URL, text…: one group around the pattern
    parts[::2] = map(typeset, parts[::2])
    return "".join(parts)


def typeset_text(text: str) -> str:
    """`typeset` on a whole message body or subject, URLs and e-mail addresses left intact.
    Idempotent: typesetting twice is typesetting once. Line by line (nothing typography
    does, nor a URL or an address, spans a line break), each line computed once."""
    return "\n".join(map(_typeset_chunk, text.split("\n")))


# A tag, a comment, or an element whose content is not prose (kept verbatim; a textarea's
# content is a form value, sent back as it is). One group only (``split`` then leaves text,
# tag, text…): the elements are spelled out, no back-reference.
_HTML_VERBATIM = re.compile(
    r"(<style\b.*?</style\s*>|<script\b.*?</script\s*>|<pre\b.*?</pre\s*>"
    r"|<code\b.*?</code\s*>|<textarea\b.*?</textarea\s*>|<!--.*?-->|<[^>]*>)",
    re.IGNORECASE | re.DOTALL,
)


def typeset_html(html: str) -> str:
    """`typeset_text` on the text nodes of an HTML document only: tags, attributes (``href``,
    ``style``), comments and ``style``/``script``/``pre``/``code``/``textarea`` elements are kept
    verbatim."""
    if _NOT_LINE_BY_LINE.search(html):
        parts = _HTML_VERBATIM.split(html)
        parts[::2] = map(_typeset_chunk, parts[::2])
        return "".join(parts)
    # No verbatim element and no tag across a line break (every e-mail of tiflow): the split
    # at tags falls at the same places line by line, and typography never spans a line, so
    # each line is typeset on its own, once: a template's fixed lines (most of a document)
    # are found in the cache, only the lines holding the message's own facts are computed.
    return "\n".join(map(_typeset_html_line, html.split("\n")))


@lru_cache(maxsize=16384)
def _typeset_html_line(line: str) -> str:
    parts = _HTML_TAG.split(line)
    parts[::2] = map(_typeset_chunk, parts[::2])
    return "".join(parts)


# Where one of `_HTML_VERBATIM`'s alternatives other than a plain tag could start (with the
# same flags), or a tag that spans a line break: none in a document, and `_HTML_VERBATIM`
# splits it where `_HTML_TAG` splits each of its lines.
_NOT_LINE_BY_LINE = re.compile(
    r"<(?:style|script|pre|code|textarea)\b|<!--|<[^>]*\n", re.IGNORECASE
)
_HTML_TAG = re.compile(r"(<[^>]*>)")


def signed_eur(amount: Decimal) -> str:
    """A change or a gap people read: ``+1 200,50 €``, ``−1 200,50 €`` with a true minus sign
    (U+2212), ``0,00 €``. (Spreadsheet cells keep numbers; CSV keeps ``-``, which Excel reads.)"""
    text = format_eur(amount)
    if text.startswith("-"):
        return "\u2212" + text[1:]
    return ("+" if amount > 0 else "") + text


def quoted(text: str) -> str:
    """``« Plateforme RH »`` with no-break spaces inside; guillemets inside the text become
    “ ” (never « « » » nested)."""
    inner = text.replace("«\u00a0", "“").replace("«", "“").replace("\u00a0»", "”")
    inner = inner.replace("»", "”").replace("“ ", "“").replace(" ”", "”")
    return f"«{NBSP}{inner.strip()}{NBSP}»"


def month_name(d: date) -> str:
    """``octobre``: the month of a date, in French, lowercase."""
    return format_date(d.replace(day=2)).split(" ")[2]


MONTH_ABBREVIATIONS = (
    "janv.", "févr.", "mars", "avr.", "mai", "juin",
    "juil.", "août", "sept.", "oct.", "nov.", "déc.",
)  # fmt: skip


def month_abbreviation(d: date) -> str:
    """``févr.``: the usual French abbreviation of a date's month (chart axes)."""
    return MONTH_ABBREVIATIONS[d.month - 1]


def format_quantity(value: Decimal) -> str:
    """``620``, ``12,5``, ``1 250``: an indicator value, decimal comma, no trailing zeros."""
    text = f"{value.normalize():f}" if value == value.to_integral() else f"{value:f}".rstrip("0")
    units, _, decimals = text.partition(".")
    sign, units = ("\u2212", units[1:]) if units.startswith("-") else ("", units)
    return sign + group_thousands(units) + (f",{decimals}" if decimals else "")


def _days(due: date, today: date) -> int:
    return (_require_date(due, "due") - _require_date(today, "today")).days


def _jours(n: int) -> str:
    return f"{n} jour" if n == 1 else f"{n} jours"


def relative_days(due: date, today: date) -> str:
    """Neutral phrase: ``aujourd'hui``, ``demain``, ``dans 7 jours``, ``hier``,
    ``il y a 3 jours``."""
    n = _days(due, today)
    if n == 0:
        return "aujourd'hui"
    if n == 1:
        return "demain"
    if n == -1:
        return "hier"
    return f"dans {_jours(n)}" if n > 0 else f"il y a {_jours(-n)}"


def deadline_phrase(due: date, today: date) -> str:
    """Deadline phrase: ``échéance aujourd'hui``, ``demain``, ``dans 7 jours``,
    ``en retard de 1 jour``, ``en retard de 3 jours``."""
    n = _days(due, today)
    if n < 0:
        return f"en retard de {_jours(-n)}"
    if n == 0:
        return "échéance aujourd'hui"
    return relative_days(due, today)
