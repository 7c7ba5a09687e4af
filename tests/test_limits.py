"""Rate and concurrency limits per account, on local memory and on the real Redis, shared by
threads and by separate processes as gunicorn's workers share them."""

import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from django.core.cache import cache

from removal import limits
from removal.errors import RemovalError
from tests.support_ci import require

REPO = Path(__file__).resolve().parent.parent
# CI gives each checkout its own database number (CUTOUT_TEST_REDIS_URL); REDIS_URL itself
# would move the whole suite's cache to Redis.
REDIS_URL = (
    os.environ.get("CUTOUT_TEST_REDIS_URL")
    or os.environ.get("REDIS_URL")
    or "redis://127.0.0.1:6379/0"
)
# An hour-long window keeps counts that several processes add from straddling a window edge.
LONG_WINDOW_S = 3600


def redis_reachable() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=1).close()
    except OSError:
        return False
    return True


@pytest.fixture(params=["locmem", "redis"])
def backend(request, settings):
    """The cache the limits count in. Accounts are fresh uuids, so Redis is never flushed."""
    if request.param == "redis":
        require(f"Redis at {REDIS_URL}", redis_reachable())
        original = settings.CACHES
        settings.CACHES = {
            **original,
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": REDIS_URL,
            },
        }
        yield request.param
        # Back to local memory before conftest's clean-up clears "the" cache.
        settings.CACHES = original
    else:
        yield request.param


def new_account() -> str:
    return f"test-{uuid.uuid4().hex}"


def test_rate_limit_refuses_past_the_allowance_with_retry_after(backend):
    account = new_account()
    for _ in range(3):
        limits.check_rate(account, limit=3)
    with pytest.raises(RemovalError) as caught:
        limits.check_rate(account, limit=3)
    assert caught.value.code == 4290
    assert caught.value.status == 429
    assert 1 <= caught.value.retry_after <= 60


def test_rate_limit_is_per_account(backend):
    first, second = new_account(), new_account()
    limits.check_rate(first, limit=1)
    limits.check_rate(second, limit=1)
    with pytest.raises(RemovalError):
        limits.check_rate(first, limit=1)


def test_rate_limit_reads_the_setting_and_zero_turns_it_off(backend, settings):
    account = new_account()
    settings.CUTOUT_RATE_LIMIT_PER_MINUTE = 2
    limits.check_rate(account)
    limits.check_rate(account)
    with pytest.raises(RemovalError):
        limits.check_rate(account)
    settings.CUTOUT_RATE_LIMIT_PER_MINUTE = 0
    for _ in range(5):
        limits.check_rate(account)


def test_concurrency_limit_refuses_while_slots_are_held(backend):
    account = new_account()
    with limits.in_flight(account, limit=2), limits.in_flight(account, limit=2):
        with pytest.raises(RemovalError) as caught:
            with limits.in_flight(account, limit=2):
                pass
        assert caught.value.code == 4290
        assert caught.value.retry_after == limits.CONCURRENCY_RETRY_AFTER_S
    with limits.in_flight(account, limit=2):
        assert limits.in_flight_count(account, 2) == 1
    assert limits.in_flight_count(account, 2) == 0


def test_a_crashing_request_gives_its_slot_back(backend):
    account = new_account()
    with pytest.raises(RuntimeError):
        with limits.in_flight(account, limit=1):
            raise RuntimeError("the engine crashed")
    assert limits.in_flight_count(account, 1) == 0
    with limits.in_flight(account, limit=1):
        pass


def test_a_slot_whose_holder_died_expires(backend):
    account = new_account()
    # A worker killed mid-request never releases; its slot's time-out is the safety net.
    limits.acquire_slot(account, 1, ttl_s=1)
    with pytest.raises(RemovalError):
        limits.acquire_slot(account, 1)
    time.sleep(1.5)
    key, token = limits.acquire_slot(account, 1)
    limits.release_slot(key, token)


def test_a_late_release_does_not_free_another_requests_slot(backend):
    account = new_account()
    key, _ = limits.acquire_slot(account, 1)
    limits.release_slot(key, "someone-else")
    assert cache.get(key) is not None
    assert limits.in_flight_count(account, 1) == 1


def test_concurrency_setting_zero_turns_it_off(backend, settings):
    settings.CUTOUT_CONCURRENCY_LIMIT = 0
    account = new_account()
    with limits.in_flight(account), limits.in_flight(account):
        assert limits.in_flight_count(account, 2) == 0


def test_threads_share_the_concurrency_limit(backend):
    account = new_account()
    results: list[str] = []
    lock = threading.Lock()
    release = threading.Event()

    def request() -> None:
        try:
            with limits.in_flight(account, limit=3):
                with lock:
                    results.append("ok")
                release.wait(10)
        except RemovalError:
            with lock:
                results.append("refused")

    threads = [threading.Thread(target=request) for _ in range(8)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 10
    while len(results) < 8 and time.monotonic() < deadline:
        time.sleep(0.01)
    release.set()
    for thread in threads:
        thread.join(10)
    assert sorted(results) == ["ok"] * 3 + ["refused"] * 5
    assert limits.in_flight_count(account, 3) == 0


def test_threads_share_the_rate_limit(backend):
    account = new_account()
    outcomes: list[bool] = []

    def request() -> None:
        for _ in range(5):
            try:
                limits.check_rate(account, limit=12, window_s=LONG_WINDOW_S)
                outcomes.append(True)
            except RemovalError:
                outcomes.append(False)

    threads = [threading.Thread(target=request) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert outcomes.count(True) == 12
    assert outcomes.count(False) == 8


# A worker process: waits for "go", spends five rate hits, then holds a concurrency slot (or is
# refused) until its stdin closes. It prints one line per step so the parent lines them up.
WORKER = """
import sys, django
django.setup()
from removal import limits
from removal.errors import RemovalError
account = sys.argv[1]
print("ready", flush=True)
sys.stdin.readline()
allowed = 0
for _ in range(5):
    try:
        limits.check_rate(account, limit=12, window_s=3600)
        allowed += 1
    except RemovalError:
        pass
print(allowed, flush=True)
try:
    with limits.in_flight(account, limit=2):
        print("ok", flush=True)
        sys.stdin.readline()
except RemovalError:
    print("refused", flush=True)
"""


# Local memory is per process by design, so this one runs on Redis only.
@pytest.mark.parametrize("backend", ["redis"], indirect=True)
def test_worker_processes_share_both_limits_on_redis(backend):
    account = new_account()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "webapp.settings",
        "DJANGO_SECRET_KEY": "tests-only-secret-key-0123456789-abcdefghijklmnop",
        "REDIS_URL": REDIS_URL,
    }
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, account],
            cwd=REPO,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    try:
        # All four are up before any of them counts, so they really run side by side.
        for worker in workers:
            assert worker.stdout.readline().strip() == "ready"
        for worker in workers:
            worker.stdin.write("go\n")
            worker.stdin.flush()
        allowed = sum(int(worker.stdout.readline()) for worker in workers)
        slots = sorted(worker.stdout.readline().strip() for worker in workers)
        assert allowed == 12
        assert slots == ["ok", "ok", "refused", "refused"]
        assert limits.in_flight_count(account, 2) == 2
    finally:
        for worker in workers:
            worker.stdin.close()
            worker.wait(30)
    assert limits.in_flight_count(account, 2) == 0


def meta(remote: str, forwarded: str | None = None) -> dict:
    data = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        data["HTTP_X_FORWARDED_FOR"] = forwarded
    return data


def test_without_trusted_proxies_the_address_is_the_socket_s_peer(settings):
    settings.CUTOUT_TRUSTED_PROXY_HOPS = 0
    assert limits.client_address(meta("198.51.100.7")) == "198.51.100.7"
    assert limits.client_address(meta("198.51.100.7", "203.0.113.9")) == "198.51.100.7"


def test_x_forwarded_for_is_read_only_as_far_as_the_trusted_hops(settings):
    settings.CUTOUT_TRUSTED_PROXY_HOPS = 1
    # The proxy at 10.0.0.2 appended the client's address to what the client itself sent.
    assert limits.client_address(meta("10.0.0.2", "1.2.3.4, 203.0.113.9")) == "203.0.113.9"
    assert limits.client_address(meta("10.0.0.2")) == "10.0.0.2"
    settings.CUTOUT_TRUSTED_PROXY_HOPS = 2
    forwarded = "1.2.3.4, 203.0.113.9, 10.0.0.1"
    assert limits.client_address(meta("10.0.0.2", forwarded)) == "203.0.113.9"
    # Fewer entries than hops: the first there is (not an index error).
    assert limits.client_address(meta("10.0.0.2", "203.0.113.9")) == "203.0.113.9"


def test_an_ipv6_client_is_counted_by_its_64_block():
    assert limits.client_block("2001:db8:1:2:aaaa::1") == "2001:db8:1:2::/64"
    assert limits.client_block("2001:db8:1:2:ffff::9") == limits.client_block("2001:db8:1:2::1")
    assert limits.client_block("2001:db8:1:3::1") != limits.client_block("2001:db8:1:2::1")
    assert limits.client_block("::ffff:198.51.100.7") == "198.51.100.7"
    assert limits.client_block("198.51.100.7") == "198.51.100.7"
    assert limits.client_block("unknown") == "unknown"


def test_free_work_slots_are_site_wide_and_given_back(backend, settings):
    settings.CUTOUT_FREE_CONCURRENCY = 2
    with limits.free_work(), limits.free_work():
        assert limits.free_work_in_flight() == 2
        with pytest.raises(RemovalError) as refused:
            with limits.free_work():
                pass
        assert refused.value.code == 4291 and refused.value.retry_after
    assert limits.free_work_in_flight() == 0


def test_a_slot_expires_with_its_request_s_time_out(settings):
    settings.CUTOUT_REQUEST_TIMEOUT_S = 30
    assert limits.slot_ttl_s() == 30 + limits.SLOT_TTL_MARGIN_S


def test_free_pixels_are_counted_per_account_per_minute(backend, settings):
    settings.CUTOUT_FREE_MEGAPIXELS_PER_MINUTE = 2
    account = new_account()
    limits.spend_free_pixels(account, 1_500_000)
    with pytest.raises(RemovalError) as refused:
        limits.spend_free_pixels(account, 1_000_000)
    assert refused.value.code == 4292 and 1 <= refused.value.retry_after <= 60
    limits.spend_free_pixels(new_account(), 2_000_000)
