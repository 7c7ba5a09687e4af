"""/healthz and /readyz, as a load balancer calls them."""

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_healthz_says_the_process_is_up(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


def test_readyz_checks_the_database_and_the_engine(client, db):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"database": "ok", "engine": "ok"}}


def test_health_endpoints_answer_get_only(client, db):
    assert client.post("/healthz").status_code == 405
    assert client.post("/readyz").status_code == 405


# A fresh process with a production configuration: HTTPS on (so every other page redirects)
# and a database that is down. The load balancer's plain-HTTP checks must still get answers.
PROBE = """
import json, django
django.setup()
from django.test import Client
client = Client(HTTP_HOST="127.0.0.1")
answers = {}
for path in ("/healthz", "/readyz", "/accounts/login/"):
    response = client.get(path)
    answers[path] = [response.status_code, response.content.decode()[:200]]
print(json.dumps(answers))
"""


def test_readyz_fails_without_the_database_and_neither_check_redirects_to_https():
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "webapp.settings",
        "DJANGO_SECRET_KEY": "tests-only-secret-key-0123456789-abcdefghijklmnop",
        "CUTOUT_HTTPS": "1",
        # Port 1 refuses at once: a database server that is down.
        "DATABASE_URL": "postgres://cutout:cutout@127.0.0.1:1/cutout",
    }
    env.pop("REDIS_URL", None)
    out = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    answers = json.loads(out.stdout.strip().splitlines()[-1])
    assert answers["/healthz"][0] == 200
    assert answers["/readyz"][0] == 503
    assert json.loads(answers["/readyz"][1])["checks"]["database"] == "unreachable"
    assert answers["/accounts/login/"][0] == 301
