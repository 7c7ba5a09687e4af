"""Several hosts on one machine: two app servers (gunicorn, as tests/support_gunicorn.py starts
them) and two batch workers (`manage.py db_worker`), each with its own data folder, sharing
only PostgreSQL, Redis and an S3 server (moto's server mode) — what `CUTOUT_HOSTS=2` demands.

One scenario: a 20-item batch submitted to one app server and started on the other while
several accounts call the API through both; one worker is killed with `kill -9` while it holds
an item. Then: every item done and charged exactly once, the ledger exact, each account's rate
limit counted across both app servers (429s), the results read through both, an
Idempotency-Key's answer replayed by the other app server, a session opened on one app server
valid on the other with the upload it stored, a visitor's try-out counted for both.
bench/multihost.py is the same with network namespaces, and measured.
"""

import io
import os
import signal
import threading
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from decimal import Decimal
from pathlib import Path

import pytest
import requests
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from PIL import Image

from batches.models import Batch, BatchItem
from billing import ledger
from billing.models import CreditAccount
from tests.conftest import PASSWORD, make_key, make_user
from tests.support_api import PIXIAN_PATH, photo
from tests.support_batches import (
    BATCHES,
    charges_for,
    database_url,
    logs,
    on_postgres,
    wait_until,
    workers,
)
from tests.support_billing import give_credits
from tests.support_ci import require
from tests.support_gunicorn import cookies_of, gunicorn, post_form
from tests.support_s3 import moto_available, s3_server

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not on_postgres(), reason="needs PostgreSQL (DATABASE_URL)"),
    pytest.mark.django_db(transaction=True),
]

REDIS_URL = os.environ.get("CUTOUT_TEST_REDIS_URL") or "redis://127.0.0.1:6379/0"
ITEMS = 20
# Calls per account per minute: each burst sends twice as many, half through each app server,
# so only a limit counted across both refuses any.
RATE = 6
CALLERS = 3
SIZE = (96, 64)


def redis_reachable() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_timeout=2).ping())
    except redis.RedisError:
        return False


def shared_env(s3_env: dict[str, str], prefix: str) -> dict[str, str]:
    """What every host of the site gets: the shared services, nothing local."""
    return {
        "CUTOUT_HOSTS": "2",
        "DATABASE_URL": database_url(),
        "REDIS_URL": REDIS_URL,
        # Both app servers count in the same keys (the suite gives each server its own).
        "CUTOUT_CACHE_PREFIX": prefix,
        "CUTOUT_RATE_LIMIT_PER_MINUTE": str(RATE),
        "CUTOUT_TRYOUT_PER_DAY": "1",
        "CUTOUT_INFERENCE_THREADS": "1",
        "CUTOUT_ENGINE_PROCESSES": "1",
        "DJANGO_DEBUG": "0",
        "DJANGO_EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
        "WEB_CONCURRENCY": "1",
        **s3_env,
    }


def account(email: str, credits: int = 100) -> tuple[object, tuple[str, str]]:
    user = give_credits(make_user(email), Decimal(credits))
    return user, make_key(user)


def burst(urls: list[str], key: tuple[str, str]) -> list[int]:
    """2 × RATE removals at once, half through each app server; their statuses.

    All arrive within a moment, and the rate is counted before any work, so the count does
    not depend on how fast the machine removes backgrounds."""
    image = photo("astronaut", SIZE)
    # Well inside one minute: the rate limit's window is a fixed minute.
    if time.time() % 60 > 50:
        time.sleep(60.5 - time.time() % 60)
    barrier = threading.Barrier(2 * RATE)
    statuses: list[int] = []

    def call(url: str) -> None:
        with requests.Session() as session:
            barrier.wait(60)
            answer = session.post(
                url + PIXIAN_PATH, auth=key, files={"image": ("a.jpg", image)}, timeout=120
            )
        if answer.status_code == 429:
            assert answer.json()["error"]["code"] == 4290
        statuses.append(answer.status_code)

    threads = [threading.Thread(target=call, args=(urls[n % 2],)) for n in range(2 * RATE)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    return statuses


def results_of(url: str, batch_id: str, key: tuple[str, str]) -> dict[str, bytes]:
    answer = requests.get(f"{url}{BATCHES}/{batch_id}/results.zip", auth=key, timeout=120)
    assert answer.status_code == 200, answer.content[:300]
    with zipfile.ZipFile(io.BytesIO(answer.content)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_two_app_servers_and_two_workers_share_everything_through_the_services(tmp_path: Path):
    require(f"Redis at {REDIS_URL}", redis_reachable())
    require("moto[server] and boto3 (pip install -e '.[dev]')", moto_available())
    batcher, batcher_key = account("batches@example.com")
    callers = [account(f"caller{n}@example.com") for n in range(CALLERS)]
    dana, dana_key = account("dana@example.com")
    # The servers check passwords with production's hashers (the suite's MD5 is not one).
    dana.password = PBKDF2PasswordHasher().encode(PASSWORD, "multihost-salt", iterations=1000)
    dana.save(update_fields=["password"])

    with ExitStack() as stack:
        s3 = stack.enter_context(s3_server())
        env = shared_env(s3.env(), f"multihost-{os.getpid()}-{time.monotonic_ns()}")
        homes = [tmp_path / "app-a", tmp_path / "app-b"]
        for home in homes:
            home.mkdir()
        # Both start at once (each waits for its /readyz); the stack stops both.
        with ThreadPoolExecutor(2) as pool:
            apps = list(pool.map(lambda home: stack.enter_context(gunicorn(home, **env)), homes))
        a, b = (app.url for app in apps)
        started = stack.enter_context(
            workers(tmp_path, 2, separate=True, CUTOUT_BATCH_LEASE_S="3", **env)
        )

        # Submitted to one app server (inputs stored in S3), started on the other.
        files = [
            ("image", (f"{n}.jpg", photo("chelsea", (SIZE[0] + n, SIZE[1])))) for n in range(ITEMS)
        ]
        answer = requests.post(a + BATCHES, auth=batcher_key, files=files, timeout=120)
        assert answer.status_code == 201, answer.content[:300]
        batch_id = answer.json()["id"]
        answer = requests.post(f"{b}{BATCHES}/{batch_id}/start", auth=batcher_key, timeout=60)
        assert answer.status_code == 200, answer.content[:300]

        # The callers' bursts, one account after the other, beside the batch.
        statuses: list[list[int]] = []
        bursts = threading.Thread(
            target=lambda: statuses.extend(burst([a, b], key) for _, key in callers)
        )
        bursts.start()

        # Kill -9 a worker while it holds an item: the lease brings the item back.
        def held() -> bool:
            return BatchItem.objects.filter(
                batch_id=batch_id, state="running", worker__endswith=f":{started[0].pid}"
            ).exists()

        wait_until(held, tmp_path, "the first worker holding an item")
        killed = started[0].pid
        os.kill(killed, signal.SIGKILL)

        # Idempotency-Key: the first answer, replayed by the other app server.
        image = photo("coffee", SIZE)
        first, again = (
            requests.post(
                url + PIXIAN_PATH,
                auth=dana_key,
                files={"image": ("c.jpg", image)},
                headers={"Idempotency-Key": "multihost-1"},
                timeout=120,
            )
            for url in (a, b)
        )
        # A session opened on one app server is valid on the other, and so is the upload it
        # stored: re-rendered and its original read through the other.
        logged_in = post_form(
            apps[0], "/accounts/login/", {"username": "dana@example.com", "password": PASSWORD}
        )
        assert logged_in.status == 302
        cookies = cookies_of(logged_in)
        csrf = {"X-CSRFToken": cookies["csrftoken"]}
        uploaded = requests.post(
            f"{a}/remove/uploads/",
            cookies=cookies,
            headers=csrf,
            files={"image": ("u.jpg", photo("coffee", (80, 60)))},
            timeout=120,
        )
        assert uploaded.status_code == 200, uploaded.content[:300]
        upload_id = uploaded.headers["X-Upload-Id"]
        rendered, original, stranger = (
            requests.post(
                f"{b}/remove/uploads/{upload_id}/render/",
                cookies=cookies,
                headers=csrf,
                data={"output.format": "jpeg", "background.color": "#ffffff"},
                timeout=120,
            ),
            requests.get(f"{b}/remove/uploads/{upload_id}/original/", cookies=cookies, timeout=60),
            requests.post(f"{b}/remove/uploads/{upload_id}/render/", headers=csrf, timeout=60),
        )

        # A visitor's try-outs are counted per address for the site: one a day here, so the
        # second, through the other app server, is refused.
        visitor = "k" * 32
        tryouts = [
            requests.post(
                f"{url}/try/",
                cookies={"csrftoken": visitor},
                headers={"X-CSRFToken": visitor},
                files={"image": ("t.jpg", photo("chelsea", SIZE))},
                timeout=120,
            )
            for url in (a, b)
        ]

        bursts.join(300)
        wait_until(
            lambda: Batch.objects.get(pk=batch_id).finished_at is not None,
            tmp_path,
            "the batch's end",
        )
        zips = [results_of(url, batch_id, batcher_key) for url in (a, b)]
        singles = [
            requests.get(f"{url}{BATCHES}/{batch_id}/items/{n}", auth=batcher_key, timeout=60)
            for n, url in enumerate((a, b))
        ]
        worker_logs = logs(tmp_path)
        stored = set(s3.keys())

    # Every item done exactly once: succeeded, one charge each, the killed one taken over.
    items = list(BatchItem.objects.filter(batch_id=batch_id).order_by("number"))
    assert [item.state for item in items] == ["succeeded"] * ITEMS, worker_logs
    assert {int(item.worker.rsplit(":", 1)[1]) for item in items} <= {p.pid for p in started}
    retried = [item for item in items if item.attempts > 1]
    assert len(retried) <= 1 and all(int(i.worker.rsplit(":", 1)[1]) != killed for i in retried)
    charges = charges_for(batch_id)
    assert len(charges) == ITEMS and len({entry.reference for entry in charges}) == ITEMS
    assert all(entry.amount == -1 for entry in charges)

    # The ledger exact: every balance the sum of its entries, each account down by its work.
    assert ledger.check() == []
    assert ledger.balance(batcher) == 100 - ITEMS
    for (user, _), seen in zip(callers, statuses, strict=True):
        assert ledger.balance(user) == 100 - seen.count(200)
    assert ledger.balance(dana) == 98  # the keyed call once, the upload once
    assert not CreditAccount.objects.filter(held__gt=0).exists()

    # The rate limit counted across both app servers: each burst sent RATE calls through each.
    for seen in statuses:
        assert sorted(seen) == [200] * RATE + [429] * RATE, seen

    # Results written by the workers, read through both app servers.
    assert zips[0] == zips[1] and len(zips[0]) == ITEMS
    for n in range(ITEMS):
        with Image.open(io.BytesIO(zips[0][f"{n}.png"])) as result:
            assert result.size == (SIZE[0] + n, SIZE[1]) and result.mode == "RGBA"
    for n, single in enumerate(singles):
        assert single.status_code == 200 and single.content == zips[0][f"{n}.png"]
    assert stored >= {item.result_name for item in items} | {item.input_name for item in items}

    assert first.status_code == again.status_code == 200
    assert again.content == first.content
    assert rendered.status_code == 200, rendered.content[:300]
    assert rendered.headers["Content-Type"] == "image/jpeg"
    assert rendered.headers["X-Credits-Charged"] == "0"
    assert original.status_code == 200 and original.content == photo("coffee", (80, 60))
    assert stranger.status_code in (401, 403)
    assert tryouts[0].status_code == 200, tryouts[0].content[:300]
    assert tryouts[1].status_code == 429 and tryouts[1].json()["error"]["code"] == 4060
