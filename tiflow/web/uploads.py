"""Uploaded files: a multipart form read within a size limit, and a file kept server-side
between its preview and its confirmation.

The guard (`tiflow.web.app.read_form`) hands a ``multipart/form-data`` body here: the body is
read up to `UPLOAD_MAX_BYTES` (the spreadsheet limit plus the form's own fields) and refused
beyond, before anything parses it; it is parsed by the standard library's MIME parser (no
python-multipart dependency); its text fields become the form (so the CSRF check is the same
as for any form) and its one file is put on ``request.state.upload``. The file itself then
goes through the spreadsheet reader's own checks (size, zip bomb, dimensions, formulas).

A kept file (`keep`) lives under ``TIFLOW_DATA_DIR/imports/`` as ``<digest>.<ext>`` with a
small JSON record beside it: the territory, the original name, the SHA-256 of the bytes, who
sent it. The browser holds only a random token (`security.new_token`); the file's name is the
token's digest, so the folder alone does not give a token back. The confirmation re-reads the
very bytes that were previewed and checks their SHA-256 against the record and the form.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import time
from dataclasses import asdict, dataclass
from email.message import Message
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path

from fastapi import Request

from tiflow.spreadsheet.limits import MAX_FILE_BYTES
from tiflow.web import security
from tiflow.web.access import Refusal

UPLOAD_MAX_BYTES = MAX_FILE_BYTES + 64 * 1024  # the file, its part headers and a few fields
KEEP_SECONDS = 24 * 3600  # a preview not confirmed within a day is forgotten
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{20,100}$")
EXTENSIONS = (".xlsx", ".csv")
MAX_PARTS = 20
UPLOAD_ROUTES = frozenset({"plan_upload"})  # the routes (access.ROUTES names) that take a file


@dataclass(frozen=True)
class Upload:
    filename: str
    data: bytes


async def read_multipart(request: Request, signed_in: bool) -> dict[str, str]:
    """The text fields of a multipart form (first value of each); its first file on
    ``request.state.upload``. 413 beyond `UPLOAD_MAX_BYTES`, 400 for a malformed body.

    Only the upload routes take one, and only with a session cookie (checked for real by the
    guard next): nobody else makes the server hold megabytes."""
    if getattr(request.scope.get("route"), "name", "") not in UPLOAD_ROUTES:
        raise Refusal(400, "Formulaire illisible.")
    if not signed_in:
        raise Refusal(403, "Session expirée : reconnectez-vous.")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > UPLOAD_MAX_BYTES:
        raise Refusal(413, too_big())
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > UPLOAD_MAX_BYTES:
            raise Refusal(413, too_big())
    fields, upload = parse_multipart(request.headers.get("content-type", ""), bytes(body))
    if upload is not None:
        request.state.upload = upload
    return fields


def parse_multipart(content_type: str, body: bytes) -> tuple[dict[str, str], Upload | None]:
    """A ``multipart/form-data`` body read with the standard library's MIME parser (the
    format is MIME's): text fields, and the first file part."""
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
    try:
        message = BytesParser(policy=HTTP).parsebytes(head + body)
    except (UnicodeError, ValueError):
        raise Refusal(400, "Formulaire illisible.") from None
    parts = message.get_payload() if message.is_multipart() else None
    if not isinstance(parts, list) or not parts or len(parts) > MAX_PARTS or message.defects:
        raise Refusal(400, "Formulaire illisible.")
    fields: dict[str, str] = {}
    upload: Upload | None = None
    for part in parts:
        if not isinstance(part, Message):
            continue
        name = part.get_param("name", header="content-disposition")
        data = part.get_payload(decode=True) or b""
        if not isinstance(name, str) or not isinstance(data, bytes):
            continue
        filename = part.get_filename()
        if filename is not None:
            upload = upload or Upload(str(filename), data)
            continue
        try:
            fields.setdefault(name, data.decode("utf-8"))
        except UnicodeDecodeError:
            raise Refusal(400, "Formulaire illisible.") from None
    return fields, upload


def too_big() -> str:
    return (
        f"Fichier trop volumineux : la limite est de {MAX_FILE_BYTES // (1024 * 1024)} Mo."
        " Découpez le plan en plusieurs fichiers."
    )


def upload_of(request: Request) -> Upload | None:
    upload = getattr(request.state, "upload", None)
    return upload if isinstance(upload, Upload) and upload.data else None


@dataclass(frozen=True)
class Kept:
    """A file kept between its preview and its confirmation."""

    territory: str
    filename: str  # as the person named it (shown, never used as a path)
    sha256: str
    sent_by: str
    sent_at: float  # seconds since the epoch
    extension: str
    result: str = ""  # once imported: the French summary of what was written


def keep(folder: Path, territory: str, upload: Upload, sent_by: str) -> str:
    """Store `upload` for `territory`; returns the token that names it (for the browser)."""
    folder.mkdir(parents=True, exist_ok=True)
    forget_old(folder)
    extension = Path(upload.filename).suffix.lower()
    token = security.new_token()
    record = Kept(
        territory,
        upload.filename[-200:],
        hashlib.sha256(upload.data).hexdigest(),
        sent_by,
        time.time(),
        extension,
    )
    name = security.digest(token)
    (folder / f"{name}{extension}").write_bytes(upload.data)
    _write_record(folder / f"{name}.json", record)
    return token


def kept(folder: Path, territory: str, token: str) -> tuple[Kept, Path] | None:
    """The record and the file of `token` for `territory` (None: unknown, expired, other
    territory, or a file whose bytes no longer match the record)."""
    if not _TOKEN.match(token):
        return None
    name = security.digest(token)
    try:
        record = Kept(**json.loads((folder / f"{name}.json").read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None
    if record.territory != territory or time.time() - record.sent_at > KEEP_SECONDS:
        return None
    path = folder / f"{name}{record.extension}"
    if record.result:
        return record, path
    try:
        if hashlib.sha256(path.read_bytes()).hexdigest() != record.sha256:
            return None
    except OSError:
        return None
    return record, path


def mark_imported(folder: Path, token: str, record: Kept, summary: str) -> None:
    """The import is written: drop the bytes, keep the record with what was done."""
    name = security.digest(token)
    (folder / f"{name}{record.extension}").unlink(missing_ok=True)
    _write_record(folder / f"{name}.json", Kept(**{**asdict(record), "result": summary}))


def forget_old(folder: Path) -> None:
    limit = time.time() - KEEP_SECONDS
    for path in folder.iterdir():
        with contextlib.suppress(OSError):
            if path.stat().st_mtime < limit:
                path.unlink()


def _write_record(path: Path, record: Kept) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(record)), encoding="utf-8")
    tmp.replace(path)
