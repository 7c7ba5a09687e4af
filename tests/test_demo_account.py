"""`manage.py demo_account`: in debug its credentials survive restarts (a 0600 file in the
data folder); a fresh data folder, or production, makes new ones."""

import json
import re
import stat
from io import StringIO

import pytest
from django.core.management import call_command

from removal import keys
from webapp.models import User

pytestmark = pytest.mark.django_db


def run_demo() -> tuple[str, str, str]:
    out = StringIO()
    call_command("demo_account", stdout=out)
    text = out.getvalue()
    password = re.search(r"log in:\s+\S+ / (\S+)", text).group(1)
    key_id = re.search(r"API id:\s+(\S+)", text).group(1)
    secret = re.search(r"API secret:\s+(\S+)", text).group(1)
    return password, key_id, secret


def test_in_debug_a_second_run_keeps_the_first_password_and_key(settings, tmp_path):
    settings.DEBUG = True
    settings.DATA_DIR = tmp_path / "data"
    first = run_demo()
    assert run_demo() == first
    demo = User.objects.get(email="demo@cutout.local")
    assert demo.check_password(first[0]) and keys.verify(first[1], first[2]) is not None
    saved = settings.DATA_DIR / "demo-credentials.json"
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert json.loads(saved.read_text())["key_id"] == first[1]

    # A fresh data folder: new credentials, and the old key stops working.
    settings.DATA_DIR = tmp_path / "fresh"
    second = run_demo()
    assert second != first and keys.verify(first[1], first[2]) is None
    assert keys.verify(second[1], second[2]) is not None


def test_in_production_nothing_is_written_and_each_run_makes_new_credentials(settings, tmp_path):
    settings.DEBUG = False
    settings.DATA_DIR = tmp_path
    first = run_demo()
    second = run_demo()
    assert first != second and keys.verify(second[1], second[2]) is not None
    assert not (tmp_path / "demo-credentials.json").exists()
