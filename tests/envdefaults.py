"""Loaded by pytest before Django reads its settings (`-p tests.envdefaults` in pyproject)."""

import os

os.environ.setdefault("DJANGO_SECRET_KEY", "tests-only-secret-key-0123456789-abcdefghijklmnop")
os.environ.setdefault("CUTOUT_MODEL", "u2netp")
os.environ.setdefault("CUTOUT_ALLOW_LOOPBACK_URLS", "0")
# Django's test runner swaps in its in-memory backend anyway; this keeps the start-up warning
# about production without mail (webapp/checks.py) out of every test run.
os.environ.setdefault("DJANGO_EMAIL_BACKEND", "django.core.mail.backends.locmem.EmailBackend")
# The suite runs the engine in its own process; the real servers (tests/support_gunicorn.py)
# run the production pool of engine processes.
os.environ.setdefault("CUTOUT_ENGINE_PROCESSES", "0")
