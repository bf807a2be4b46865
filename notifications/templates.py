"""Jinja2 rendering of message bodies: each kind NAME has ``NAME.txt.j2`` and ``NAME.html.j2``.

HTML templates autoescape (a bare ``Environment()`` does not, and apprise passes HTML
through unsanitised); text templates never escape, so ``<`` stays ``<`` in the text part.
Unknown extensions escape too: safe by default.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.headerregistry import Address as Mailbox
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template, select_autoescape

from . import fr

TEMPLATE_DIR = Path(__file__).parent / "templates"
_NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]*")


# French formats for everything a person reads (e-mails here, the web pages too).
FRENCH_FILTERS = {
    "date_fr": fr.format_date,
    "datetime_fr": fr.format_datetime,
    "eur": fr.format_eur,
    "deadline": fr.deadline_phrase,
    "relative_days": fr.relative_days,
    "plural": fr.plural,
    "quoted": fr.quoted,
    "signed_eur": fr.signed_eur,
}


@cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        autoescape=select_autoescape(
            enabled_extensions=("html", "htm", "xml", "html.j2", "htm.j2", "xml.j2"),
            disabled_extensions=("txt", "txt.j2"),
            default_for_string=True,
            default=True,
        ),
        # A missing variable is a bug in the caller, not an empty string in a letter.
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        # Shipped with the package: never re-read from disk (no stat per e-mail of a sweep).
        auto_reload=False,
    )
    env.filters.update(FRENCH_FILTERS)
    return env


@cache
def _templates(template_name: str) -> tuple[Template, Template]:
    """The text and HTML templates of a kind, compiled once per process."""
    if not _NAME_RE.fullmatch(template_name):
        raise ValueError(f"invalid template name: {template_name!r}")
    env = environment()
    return env.get_template(f"{template_name}.txt.j2"), env.get_template(f"{template_name}.html.j2")


@dataclass(frozen=True)
class ReplyTo:
    """The person a reply reaches: the message's Reply-To header and the footer's link."""

    name: str
    address: str

    @property
    def header(self) -> str:
        """``Claire Moreau <claire.moreau@…>`` (checked again by the outbox)."""
        return _mailbox_header(self.name, self.address)


@lru_cache(maxsize=4096)  # the same coordinator heads the replies of a whole territory
def _mailbox_header(name: str, address: str) -> str:
    shown = _CONTROL_RE.sub(" ", name).strip()
    return str(Mailbox(display_name=shown, addr_spec=address.strip()))


_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


def render(
    template_name: str, *, reply_to: ReplyTo | None = None, **context: Any
) -> tuple[str, str]:
    """Render ``NAME.txt.j2`` and ``NAME.html.j2`` with the same context: ``(text, html)``,
    typeset (no-break spaces inside « » and before : ; ? !, see `fr.typeset_text`).
    With `reply_to`, the footer says whom a reply reaches (a ``mailto:`` link in HTML)."""
    text_template, html_template = _templates(template_name)
    context["reply"] = reply_to
    text = text_template.render(**context)
    html = html_template.render(**context)
    # French typography once, here, for every kind of message (text nodes only in HTML).
    return fr.typeset_text(text.strip()) + "\n", fr.typeset_html(html)
