"""Ordered test steps that share a module's state: a step whose prerequisite did not finish is skipped."""

from __future__ import annotations

import pytest


def need(state: dict, *keys: str) -> None:
    """Skip unless the earlier steps left ``keys`` in ``state``."""
    missing = [k for k in keys if k not in state]
    if missing:
        pytest.skip(f"an earlier step did not finish ({', '.join(missing)} missing)")
