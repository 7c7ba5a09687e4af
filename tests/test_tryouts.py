"""A visitor's try-out through Django's test client: the real views, engine (u2netp) and
storage. Watermarked test mode, never charged; bounded in bytes, pixels and per address; kept
an hour for the visitor's session only; adopted by the account signed up in that session."""

import io
import re
from datetime import timedelta
from decimal import Decimal

import numpy as np
import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone
from PIL import Image

from billing import ledger
from billing.models import LedgerEntry
from removal import tryouts, uploads
from removal.engine.types import RemovalOptions
from removal.models import Upload
from tests.conftest import PASSWORD, make_user
from tests.support_api import photo
from tests.support_billing import give_credits

pytestmark = pytest.mark.django_db

TRY = "/try/"


def visitor_client() -> Client:
    return Client(enforce_csrf_checks=True)


def csrf(client: Client) -> str:
    client.get("/")
    return client.cookies["csrftoken"].value


def post_tryout(client: Client, data: bytes | None = None, name: str = "cat.jpg", **fields):
    image = SimpleUploadedFile(name, photo() if data is None else data, "image/jpeg")
    token = csrf(client)
    return client.post(TRY, {"image": image, **fields}, HTTP_X_CSRFTOKEN=token)


def rgba(body: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(body)).convert("RGBA")).astype(int)


def test_a_visitor_gets_a_watermarked_test_result_and_nothing_is_charged():
    client = visitor_client()
    response = post_tryout(client, **{"test": "false"})
    assert response.status_code == 200, response.content
    assert response["X-Credits-Charged"] == "0" and "X-Credits-Calculated" in response
    upload = Upload.objects.get(public_id=response["X-Upload-Id"])
    assert upload.user is None and upload.visitor and not upload.paid
    assert upload.expires_at - timezone.now() <= timedelta(hours=1)
    assert not LedgerEntry.objects.exists()

    # The watermark: the try-out's result is the test-mode render (whatever `test` said),
    # which differs from a production render of the same cut-out.
    again = uploads.render_upload(upload, tryouts.tryout_options(RemovalOptions()))
    marked = rgba(response.content)
    assert np.array_equal(marked, rgba(again.result.body))
    user = give_credits(make_user("paying@example.com"))
    Upload.objects.filter(pk=upload.pk).update(user=user, visitor="")
    upload.refresh_from_db()
    production = uploads.render_upload(upload, RemovalOptions(test=False))
    assert not np.array_equal(marked, rgba(production.result.body))


def test_a_tryout_is_scaled_to_4_megapixels_and_larger_files_are_refused(settings):
    client = visitor_client()
    big = photo("astronaut", (2600, 2000))  # 5.2 MP
    response = post_tryout(client, big)
    assert response.status_code == 200, response.content
    assert response["X-Input-Size"] == "2600 2000"
    upload = Upload.objects.get()
    height, width = uploads.restore_cutout(upload).rgb.shape[:2]
    assert width * height <= tryouts.MAX_PIXELS

    # A file just over the limit (a photo with bytes after its end): refused from its size.
    padded = photo() + bytes(tryouts.MAX_BYTES)
    refused = post_tryout(client, padded, "padded.jpg")
    assert refused.status_code == 400 and refused.json()["error"]["code"] == 1014
    # A body far over it: refused from the declared length, before the body is read.
    noise = np.random.default_rng(1).integers(0, 256, (2400, 2400, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, "PNG")
    too_big = post_tryout(client, buffer.getvalue(), "noise.png")
    assert too_big.status_code == 413 and too_big.json()["error"]["code"] == 1004
    url = client.post(
        TRY, {"image.url": "https://example.com/cat.jpg"}, HTTP_X_CSRFTOKEN=csrf(client)
    )
    assert url.status_code == 400 and url.json()["error"]["code"] == 1040
    assert Upload.objects.count() == 1


def test_each_address_gets_its_daily_quota_of_tryouts(settings):
    settings.CUTOUT_TRYOUT_PER_DAY = 2
    client = visitor_client()
    small = photo(size=(64, 48))
    assert post_tryout(client, small).status_code == 200
    assert post_tryout(client, small).status_code == 200
    refused = post_tryout(client, small)
    assert refused.status_code == 429 and refused.json()["error"]["code"] == 4060
    assert int(refused["Retry-After"]) > 0
    assert "Sign up" in refused.json()["error"]["message"]
    # Another session from the same address is the same visitor for the quota.
    assert post_tryout(visitor_client(), small).status_code == 429
    other = visitor_client()
    token = csrf(other)
    image = SimpleUploadedFile("cat.jpg", small, "image/jpeg")
    another_address = other.post(
        TRY, {"image": image}, HTTP_X_CSRFTOKEN=token, REMOTE_ADDR="10.1.2.3"
    )
    assert another_address.status_code == 200
    assert Upload.objects.count() == 3


def test_a_tryout_needs_the_csrf_token():
    client = visitor_client()
    client.get("/")
    image = SimpleUploadedFile("cat.jpg", photo(), "image/jpeg")
    assert client.post(TRY, {"image": image}).status_code == 403
    assert not Upload.objects.exists()


def test_only_the_visitors_session_reaches_the_tryout_and_only_for_an_hour():
    visitor = visitor_client()
    upload_id = post_tryout(visitor)["X-Upload-Id"]
    render = f"/try/{upload_id}/render/"
    original = f"/remove/uploads/{upload_id}/original/"
    token = csrf(visitor)
    assert (
        visitor.post(
            render, {"result.crop_to_foreground": "true"}, HTTP_X_CSRFTOKEN=token
        ).status_code
        == 200
    )
    assert visitor.get(original).status_code == 200

    stranger = visitor_client()
    assert stranger.post(render, {}, HTTP_X_CSRFTOKEN=csrf(stranger)).status_code == 404
    assert stranger.get(original).status_code == 404
    user = make_user("someone-else@example.com")
    signed_in = Client()
    signed_in.force_login(user)
    assert signed_in.get(original).status_code == 404
    assert signed_in.post(f"/remove/uploads/{upload_id}/render/", {}).status_code == 404

    Upload.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    expired = visitor.post(render, {}, HTTP_X_CSRFTOKEN=token)
    assert expired.status_code == 404 and "expired" in expired.json()["error"]["message"]
    assert uploads.purge_expired() == 1


def test_signing_up_in_the_same_session_keeps_the_tryout_for_the_new_account():
    visitor = Client()  # the sign-up forms post with the token as a browser would
    image = SimpleUploadedFile("cat.jpg", photo(), "image/jpeg")
    upload_id = visitor.post(TRY, {"image": image})["X-Upload-Id"]
    visitor.post("/signup/", {"email": "new@example.com"})
    link = re.search(r"http://testserver(/\S+/)", mail.outbox[-1].body).group(1)
    done = visitor.post(link, {"password1": PASSWORD, "password2": PASSWORD})
    assert done.status_code == 302
    upload = Upload.objects.get(public_id=upload_id)
    assert upload.user.email == "new@example.com" and upload.visitor == ""
    assert upload.expires_at - timezone.now() > timedelta(hours=2)

    home = visitor.get("/").content.decode()
    assert f'["{upload_id}"]' in home  # the page renders it once, without uploading again
    assert f'["{upload_id}"]' not in visitor.get("/").content.decode()
    # Test mode renders it for free; with credits the first clean render charges once.
    assert visitor.post(f"/remove/uploads/{upload_id}/render/", {"test": "true"}).status_code == 200
    give_credits(upload.user, Decimal(3))
    paid = visitor.post(f"/remove/uploads/{upload_id}/render/", {})
    assert paid.status_code == 200 and paid["X-Credits-Charged"] == "1"
    assert ledger.balance(upload.user) == 2

    # A try-out from another session is not adopted.
    other = Client()
    other_id = other.post(TRY, {"image": SimpleUploadedFile("a.jpg", photo(), "image/jpeg")})[
        "X-Upload-Id"
    ]
    assert Upload.objects.get(public_id=other_id).user is None
