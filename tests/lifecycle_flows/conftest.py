"""Fixtures of the lifecycle flow tests (helpers live in lifecycle_helpers.py)."""

from __future__ import annotations

import pytest


@pytest.fixture
def copil_at() -> str:
    """A COPIL date as a coordinator types it: Europe/Paris wall clock, no zone."""
    return "2024-01-25T09:30:00"
