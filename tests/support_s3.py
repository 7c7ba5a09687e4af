"""An S3-compatible server on 127.0.0.1 for the storage tests: moto's server mode, started by
the tests in a thread on a free port (a real HTTP server; boto3 and django-storages talk to it
exactly as they would to S3).

Self-contained, for any test module or helper:

    from tests.support_s3 import s3_server

    with s3_server() as server:          # starts moto, creates a bucket
        env = server.env()               # AWS_* variables: hand them to a subprocess (gunicorn)
        settings.STORAGES = {**settings.STORAGES, "default": server.storage()}
        server.keys()                    # the bucket's object names, read with boto3

Fixtures (register the module in `pytest_plugins`, or import the fixtures by name):
- `s3` (session): one server for the whole run;
- `s3_bucket`: a fresh bucket on it for one test, with its `env()`/`storage()`;
- `storage` (parametrised "local" / "s3"): the default storage switched for one test, so a
  test taking it runs once on local files (its own MEDIA_ROOT) and once on the S3 server.
  Its value is a `StorageUnderTest` that lists what is stored.

Under CI (CI=1) a missing moto fails the test instead of skipping it (tests/support_ci.py).
"""

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import pytest

from tests.support_ci import require

ACCESS_KEY = "cutout-test-id"
SECRET_KEY = "cutout-test-secret"
REGION = "us-east-1"


@dataclass
class S3Server:
    """A running moto server and one bucket on it."""

    endpoint_url: str
    bucket: str

    def env(self) -> dict[str, str]:
        """The environment variables Cutout's settings read (README, S3 storage)."""
        return {
            "AWS_STORAGE_BUCKET_NAME": self.bucket,
            "AWS_S3_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_S3_REGION_NAME": REGION,
        }

    def storage(self) -> dict:
        """`STORAGES["default"]` as webapp/settings.py builds it from `env()`."""
        from webapp.env import default_storage_from_env

        with mock.patch.dict(os.environ, self.env()):
            return default_storage_from_env()

    def client(self):  # noqa: ANN201 (a boto3 client; boto3 has no importable type for it)
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name=REGION,
        )

    def with_bucket(self, bucket: str | None = None) -> "S3Server":
        """This server with another, newly created bucket (a random name by default)."""
        other = S3Server(self.endpoint_url, bucket or f"cutout-{secrets.token_hex(6)}")
        other.client().create_bucket(Bucket=other.bucket)
        return other

    def keys(self) -> list[str]:
        """Every object name in the bucket."""
        names: list[str] = []
        for page in self.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
            names.extend(item["Key"] for item in page.get("Contents", []))
        return sorted(names)


def moto_available() -> bool:
    try:
        import boto3  # noqa: F401
        from moto.server import ThreadedMotoServer  # noqa: F401
    except ImportError:
        return False
    return True


@contextmanager
def s3_server(bucket: str = "cutout-test") -> Iterator[S3Server]:
    """Start moto's S3 server on 127.0.0.1 (a free port), create `bucket`, stop it after."""
    from moto.server import ThreadedMotoServer

    # boto3 must not find the machine's own credentials or a proxy for 127.0.0.1.
    with mock.patch.dict(
        os.environ,
        {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "NO_PROXY": "*"},
    ):
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        try:
            host, port = server.get_host_and_port()
            running = S3Server(f"http://{host}:{port}", bucket)
            running.client().create_bucket(Bucket=bucket)
            yield running
        finally:
            server.stop()


@pytest.fixture(scope="session")
def s3() -> Iterator[S3Server]:
    """One moto S3 server for the session."""
    require("moto[server] and boto3 (pip install -e '.[dev]')", moto_available())
    with s3_server() as server:
        yield server


@pytest.fixture
def s3_bucket(s3: S3Server) -> S3Server:
    """A fresh bucket for one test, on the session's server."""
    return s3.with_bucket()


@dataclass
class StorageUnderTest:
    """The default storage one test runs on, and a way to see what it holds."""

    kind: str
    media_root: Path
    server: S3Server | None = None

    def names(self) -> list[str]:
        """Every stored file's name, relative to the storage's root."""
        if self.server is not None:
            return self.server.keys()
        if not self.media_root.exists():
            return []
        return sorted(
            str(path.relative_to(self.media_root))
            for path in self.media_root.rglob("*")
            if path.is_file()
        )


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, settings, tmp_path: Path) -> StorageUnderTest:
    """Django's default storage for this test: local files, then the S3 server."""
    media_root = Path(settings.MEDIA_ROOT)
    if request.param == "local":
        return StorageUnderTest("local", media_root)
    server = request.getfixturevalue("s3_bucket")
    settings.STORAGES = {**settings.STORAGES, "default": server.storage()}
    return StorageUnderTest("s3", media_root, server)
