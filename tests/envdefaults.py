"""Loaded by pytest before Django reads its settings (`-p tests.envdefaults` in pyproject)."""

import os

os.environ.setdefault("DJANGO_SECRET_KEY", "tests-only-secret-key-0123456789-abcdefghijklmnop")
os.environ.setdefault("CUTOUT_MODEL", "u2netp")
os.environ.setdefault("CUTOUT_ALLOW_LOOPBACK_URLS", "0")
