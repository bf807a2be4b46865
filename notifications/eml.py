"""Embedded default transport: ``.eml`` files in an outbox folder."""

from __future__ import annotations

import logging
import os
import re
import secrets
import tempfile
from collections.abc import Collection
from pathlib import Path

from models import clock

from .message import OutgoingEmail, parse_mailbox, render_email, validate_address
from .smtp import DeliveryResult, french_reason, temporary

COORDINATOR_TAG = "coordinator"
DEFAULT_OUTBOX_SENDER = "tiflow <ne-pas-repondre@tiflow.invalid>"

log = logging.getLogger(__name__)


def _slug(value: str, limit: int = 60) -> str:
    text = value.lower().replace("@", "-at-")
    return re.sub(r"[^a-z0-9._-]+", "-", text).strip("-.")[:limit] or "x"


def file_suffix(key: str, address: str) -> str:
    """How an ``.eml`` file name ends, after its time stamp: ``<key>_<recipient>`` (ASCII),
    so a caller knowing a message's key and recipient finds its file."""
    return f"{_slug(key, 24)}_{_slug(address)}"


class EmlDirectoryTransport:
    """Embedded default: one standard ``.eml`` file per recipient in ``folder``.

    Names are ASCII and sort by time (UTC, ``Z``), e.g.
    ``2025-03-10T070000.123456Z_fa-07-rappel_marie.dupont-at-cc-tev.fr.eml``. Files are
    written to a hidden temporary file then renamed, so a crash never leaves half a message
    (at worst a ``.*.eml.tmp`` file). Files are created mode 0600: they hold personal data.
    """

    def __init__(
        self, folder: str | os.PathLike[str], *, sender: str = DEFAULT_OUTBOX_SENDER
    ) -> None:
        self.folder = Path(folder)
        self.sender = validate_address(sender)

    def write(
        self, email: OutgoingEmail, tag: str, *, only: Collection[str] | None = None
    ) -> list[DeliveryResult]:
        recipients: list[str | None] = list(email.to)
        if not recipients and tag == COORDINATOR_TAG:
            recipients = [None]  # addressed by configuration, which does not exist here
        key = email.key or secrets.token_hex(4)
        rendered = render_email(email, self.sender, extra={"X-Tiflow-Tag": tag})
        results = []
        for recipient in recipients:
            addr = parse_mailbox(recipient).addr if recipient else tag
            if only is not None and addr not in only:
                continue
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
                path = self._write(rendered.copy_for(recipient), file_suffix(key, addr))
            except OSError as exc:
                results.append(
                    temporary(
                        addr, f"impossible d'écrire le fichier .eml : {french_reason(exc)}", "eml"
                    )
                )
                continue
            results.append(DeliveryResult(addr, True, channel="eml"))
            log.info("message for %s written to %s", addr, path)
        return results

    def _write(self, data: bytes, suffix: str) -> Path:
        now = clock.now()
        final = self.folder / f"{now:%Y-%m-%dT%H%M%S}.{now.microsecond:06d}Z_{suffix}.eml"
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".", suffix=".eml.tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, final)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return final
