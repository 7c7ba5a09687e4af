"""What the suite needs from the machine: under CI a missing piece fails the test, elsewhere it
skips it, so a laptop without Chromium still runs the rest while CI can never pass without it.

Tests call `require(what, available)` rather than `pytest.skip` for Chromium, Redis and
PostgreSQL (`.ci/run` exports CI=1).
"""

import os

import pytest


def under_ci() -> bool:
    return os.environ.get("CI", "") not in ("", "0", "false")


def require(what: str, available: bool = False) -> None:
    """Nothing when `available`; otherwise fail under CI and skip elsewhere, naming `what`."""
    if available:
        return
    message = f"needs {what}"
    if under_ci():
        pytest.fail(f"CI {message}, and it is not available", pytrace=False)
    pytest.skip(message)
