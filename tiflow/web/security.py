"""Secrets of the web application: random tokens, their digests, signatures, CSRF tokens.

A token given to a browser or written in an e-mail is ``<random>.<signature>``: the signature
(HMAC-SHA256 with the secret key) is checked before any database read, and only the SHA-256
digest of the random part is stored, so the database alone cannot forge or replay one.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets


def new_token() -> str:
    return secrets.token_urlsafe(32)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _signature(key: bytes, purpose: str, value: str) -> str:
    mac = hmac.new(key, f"{purpose}:{value}".encode(), hashlib.sha256)
    return mac.hexdigest()[:32]


def sign(key: bytes, purpose: str, token: str) -> str:
    """``token.signature``, valid for `purpose` only (a session cookie is not a link)."""
    return f"{token}.{_signature(key, purpose, token)}"


def unsign(key: bytes, purpose: str, signed: str | None) -> str | None:
    """The token if `signed` carries a valid signature for `purpose`, else None."""
    if not signed or signed.count(".") != 1 or len(signed) > 200:
        return None
    token, signature = signed.split(".")
    if not hmac.compare_digest(signature, _signature(key, purpose, token)):
        return None
    return token


def csrf_token(key: bytes, holder: str) -> str:
    """The CSRF token of a session (or of an anonymous visitor's cookie)."""
    return _signature(key, "csrf", holder)


def csrf_valid(key: bytes, holder: str | None, submitted: str | None) -> bool:
    if not holder or not submitted:
        return False
    return hmac.compare_digest(csrf_token(key, holder), submitted)
