"""Storage through Django's storage API: the same code on local files and on an S3-compatible
server (moto's server mode on 127.0.0.1, tests/support_s3.py), configured from the README's
environment variables."""

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from tests.support_s3 import StorageUnderTest


def test_the_default_storage_saves_reads_and_deletes_on_local_files_and_s3(
    storage: StorageUnderTest,
):
    name = default_storage.save("uploads/check/original", ContentFile(b"\x89PNG bytes"))
    assert storage.names() == [name]
    with default_storage.open(name, "rb") as stored:
        assert stored.read() == b"\x89PNG bytes"
    default_storage.delete(name)
    default_storage.delete(name)  # twice, as two hosts purging at once would: no error
    assert storage.names() == []


def test_the_s3_settings_come_from_the_documented_variables(s3_bucket):
    storage = s3_bucket.storage()
    assert storage["BACKEND"] == "storages.backends.s3.S3Storage"
    assert storage["OPTIONS"]["bucket_name"] == s3_bucket.bucket
    assert storage["OPTIONS"]["endpoint_url"] == s3_bucket.endpoint_url


pytestmark = pytest.mark.django_db
