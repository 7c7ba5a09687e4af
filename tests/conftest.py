import pytest
from django.core.cache import cache, caches

from removal import keys
from tests.support_ci import require
from webapp.models import User

pytest_plugins = [
    "tests.support_browser",
    "tests.support_http",
    "tests.support_billing",
    "tests.support_upstream",
    "tests.support_engine",
    "tests.support_gunicorn",
    "tests.support_s3",
    "tests.support_reseller",
]


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Tests marked `postgres` need it: a failure under CI, a skip elsewhere."""
    if item.get_closest_marker("postgres"):
        from django.conf import settings

        engine = settings.DATABASES["default"]["ENGINE"]
        require("PostgreSQL (DATABASE_URL=postgres://...)", engine.endswith("postgresql"))


PASSWORD = "correct-horse-battery-staple-42"


def make_user(email: str = "someone@example.com", **overrides) -> User:
    return User.objects.create_user(email, overrides.pop("password", PASSWORD), **overrides)


def make_key(user: User, name: str = "default") -> tuple[str, str]:
    key, secret = keys.create_key(user, name)
    return key.key_id, secret


@pytest.fixture(autouse=True)
def _isolated(settings, tmp_path):
    """Each test gets its own media folder and an empty cache (rate-limit counters live there)."""
    settings.MEDIA_ROOT = tmp_path / "media"
    # Real hashing costs ~0.2 s per user; the suite creates hundreds. Password tests still run
    # through the same hasher interface.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    for each in (cache, caches["shared"]):
        each.clear()
    yield
    for each in (cache, caches["shared"]):
        each.clear()


@pytest.fixture(autouse=True)
def _ledger_stays_balanced(request):
    """After every test that touched the database, `check_ledger` is clean: every balance is
    the sum of its entries, every hold has its reservation."""
    names = set(request.fixturenames)
    database = next((n for n in ("transactional_db", "db", "live_server") if n in names), None)
    if database is None or request.node.get_closest_marker("tampers_with_the_ledger"):
        yield
        return
    request.getfixturevalue(database)
    yield
    from billing import ledger

    assert ledger.check() == []


@pytest.fixture
def alice(db) -> User:
    from tests.support_billing import give_credits  # a plugin: imported once pytest loaded it

    return give_credits(make_user("alice@example.com"))  # ALICE_CREDITS, through the ledger


@pytest.fixture
def bob(db) -> User:
    return make_user("bob@example.com")


@pytest.fixture
def alice_key(alice) -> tuple[str, str]:
    return make_key(alice)
