"""What a test does when something it needs is missing: skip here, fail under CI.

CI sets ``CI=true``; a green CI run must mean every test ran, so a missing browser, Ray or
TensorBoard fails there. On a developer's machine the test is skipped with the reason.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def unavailable(reason: str) -> None:
    """Fail under ``CI=true``, skip otherwise; ``reason`` says what is missing and how to get it."""
    if in_ci():
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def require(module: str, reason: str) -> ModuleType:
    """Import and return an optional ``module``, else ``unavailable(reason)``."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        unavailable(f"{reason}: import {module} failed ({exc})")
