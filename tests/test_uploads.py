"""The website's upload calls through Django's test client: the real views, engine (u2netp),
ledger and storage. One upload is charged once; re-renders and downloads are free; refusals
charge nothing and store nothing; nobody reaches another user's uploads."""

import io
from datetime import timedelta
from decimal import Decimal

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from PIL import Image

from billing import ledger
from billing.models import LedgerEntry, Reservation
from removal import uploads
from removal.engine import encode
from removal.models import IdempotentRequest, Upload
from tests.support_api import photo, rotated_photo
from tests.support_billing import ALICE_CREDITS

CREATE = "/remove/uploads/"


def render_url(upload_id: str) -> str:
    return f"/remove/uploads/{upload_id}/render/"


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def post_image(client: Client, data: bytes | None = None, name: str = "cat.jpg", **fields):
    image = SimpleUploadedFile(name, photo() if data is None else data, "image/jpeg")
    return client.post(CREATE, {"image": image, **fields})


def charges(user) -> list[Decimal]:
    return [e.amount for e in LedgerEntry.objects.filter(account__user=user, kind="charge")]


def pixels(body: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(body)).convert("RGBA"))


def test_an_upload_is_charged_once_and_rendered_again_for_free(alice):
    client = client_for(alice)
    first = post_image(client, key="file-0001-abcdef")
    assert first.status_code == 200 and first["Content-Type"] == "image/png"
    assert first["X-Credits-Charged"] == "1"
    assert first["X-Credits-Balance"] == str(ALICE_CREDITS - 1)
    assert first["X-Input-Size"] == first["X-Result-Size"] == "240 160"
    upload = Upload.objects.get(public_id=first["X-Upload-Id"])
    assert upload.user == alice and upload.paid and upload.charged == 1
    assert upload.original.storage.exists(upload.original.name)
    assert upload.alpha.storage.exists(upload.alpha.name)

    for fields in (
        {"background.color": "#336699"},
        {"output.format": "delta_png"},
        {"output.format": "png", "test": "true"},
        {"output.format": "jpeg", "output.jpeg_quality": "40"},
    ):
        again = client.post(render_url(upload.public_id), fields)
        assert again.status_code == 200, again.content
        assert again["X-Credits-Charged"] == "0"
        assert again["X-Upload-Id"] == upload.public_id
    assert again["Content-Type"] == "image/jpeg"
    assert charges(alice) == [Decimal(-1)]
    assert ledger.balance(alice) == ALICE_CREDITS - 1


def test_a_test_mode_upload_is_free_until_first_rendered_for_real_then_charged_once(alice):
    client = client_for(alice)
    first = post_image(client, test="true")
    assert first.status_code == 200
    assert first["X-Credits-Charged"] == "0" and first["X-Credits-Calculated"] == "1"
    upload_id = first["X-Upload-Id"]
    assert not Upload.objects.get(public_id=upload_id).paid
    assert charges(alice) == []

    real = client.post(render_url(upload_id), {"output.format": "png"})
    assert real["X-Credits-Charged"] == "1" and real["X-Credits-Balance"] == "99"
    again = client.post(render_url(upload_id), {"output.format": "png"})
    assert again["X-Credits-Charged"] == "0"
    assert charges(alice) == [Decimal(-1)]
    assert Upload.objects.get(public_id=upload_id).paid
    # The watermark is only where test mode asked for it.
    marked = client.post(render_url(upload_id), {"test": "true", "output.format": "png"})
    assert not np.array_equal(pixels(marked.content), pixels(real.content))


def test_a_retried_post_with_the_same_key_is_the_same_upload_and_not_charged_again(alice):
    client = client_for(alice)
    first = post_image(client, key="retry-key-0001")
    second = post_image(client, key="retry-key-0001")
    assert second.status_code == 200
    assert second["X-Upload-Id"] == first["X-Upload-Id"]
    assert second["X-Credits-Charged"] == "0"
    assert Upload.objects.count() == 1 and charges(alice) == [Decimal(-1)]


def test_a_render_restored_from_storage_equals_the_first_render(alice):
    client = client_for(alice)
    # max_pixels scales the analysis down; the delta stays at the input's full size.
    first = post_image(
        client, data=rotated_photo(6), **{"max_pixels": "9000", "output.format": "png"}
    )
    upload_id = first["X-Upload-Id"]
    fresh_delta = client.post(render_url(upload_id), {"output.format": "delta_png"})
    uploads._cache.clear()  # as in another worker process: decoded again from storage
    restored = client.post(render_url(upload_id), {"output.format": "png"})
    restored_delta = client.post(render_url(upload_id), {"output.format": "delta_png"})
    assert np.array_equal(pixels(restored.content), pixels(first.content))
    assert np.array_equal(pixels(restored_delta.content), pixels(fresh_delta.content))
    assert restored_delta["X-Result-Size"] == restored_delta["X-Input-Size"] == "160 240"
    assert first["X-Input-Orientation"] == "6"
    upright = np.asarray(Image.open(io.BytesIO(rotated_photo(6))).transpose(Image.ROTATE_270))
    rebuilt = encode.rebuild_from_delta(pixels(restored_delta.content), upright[..., :3])
    assert rebuilt.shape == (240, 160, 4)


@pytest.mark.parametrize(
    ("data", "fields", "status", "code"),
    [
        (b"\xff\xd8\xff\xe0not really a jpeg", {}, 400, 1006),
        (b"%PDF-1.7 a document", {}, 400, 1007),
        (b"", {}, 400, 1005),
        (None, {"background.color": "blue"}, 400, 2003),
        (None, {"result.margin": "lots"}, 400, 2005),
    ],
)
def test_bad_files_and_options_are_refused_with_their_code_and_cost_nothing(
    alice, data, fields, status, code
):
    response = post_image(client_for(alice), data=data, **fields)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert Upload.objects.count() == 0 and charges(alice) == []
    assert not Reservation.objects.filter(status=Reservation.Status.HELD).exists()


def test_without_credits_the_upload_is_refused_402_and_test_mode_still_works(bob):
    client = client_for(bob)
    refused = post_image(client)
    assert refused.status_code == 402 and refused.json()["error"]["code"] == 4020
    assert Upload.objects.count() == 0
    free = post_image(client, test="true")
    assert free.status_code == 200 and free["X-Credits-Charged"] == "0"
    upgrade = client.post(render_url(free["X-Upload-Id"]), {})
    assert upgrade.status_code == 402
    assert not Upload.objects.get().paid and charges(bob) == []


def test_nobody_else_reaches_an_upload_and_anonymous_calls_are_refused(alice, bob):
    upload_id = post_image(client_for(alice))["X-Upload-Id"]
    stolen = client_for(bob).post(render_url(upload_id), {})
    assert stolen.status_code == 404 and stolen.json()["error"]["code"] == 4040
    anonymous = Client()
    assert anonymous.post(render_url(upload_id), {}).status_code in (401, 403)
    assert post_image(anonymous).status_code in (401, 403)
    page = anonymous.get("/remove/")
    assert page.status_code == 302 and "/accounts/login/" in page["Location"]
    assert charges(bob) == [] and Upload.objects.count() == 1


def test_the_calls_check_the_csrf_token(alice):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    response = post_image(client)
    assert response.status_code == 403
    assert Upload.objects.count() == 0


def test_the_page_shows_the_balance_and_starts_in_test_mode_without_credits(alice, bob):
    page = client_for(alice).get("/remove/").content.decode()
    assert 'data-testid="balance">100<' in page and 'id="opt-test" name="test" >' in page
    home = client_for(bob).get("/").content.decode()
    assert 'data-testid="balance">0<' in home and 'name="test" checked' in home
    assert 'data-mode="tryout"' in Client().get("/").content.decode()


def test_expired_uploads_are_gone_and_purge_results_deletes_their_files(alice, capsys):
    client = client_for(alice)
    old_id = post_image(client, key="old-upload-0001")["X-Upload-Id"]
    new_id = post_image(client, key="new-upload-0001")["X-Upload-Id"]
    old = Upload.objects.get(public_id=old_id)
    Upload.objects.filter(pk=old.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    expired = client.post(render_url(old_id), {})
    assert expired.status_code == 404 and "expired" in expired.json()["error"]["message"]

    answer = IdempotentRequest.objects.create(user=alice, endpoint="pixian", key="k1")
    IdempotentRequest.objects.filter(pk=answer.pk).update(
        created_at=timezone.now() - timedelta(days=2)
    )
    call_command("purge_results")
    assert capsys.readouterr().out.strip() == (
        "Purged 1 upload, 1 stored API answer, 0 call records, 0 improvement images, 0 expired "
        "access tokens and 0 batch results."
    )
    assert not IdempotentRequest.objects.exists()
    assert list(Upload.objects.values_list("public_id", flat=True)) == [new_id]
    assert not old.original.storage.exists(old.original.name)
    assert not old.alpha.storage.exists(old.alpha.name)
    assert client.post(render_url(new_id), {}).status_code == 200


def _heic(size: tuple[int, int]) -> bytes:
    image = Image.open(io.BytesIO(photo("astronaut", size)))
    buffer = io.BytesIO()
    image.save(buffer, "HEIF", quality=80)
    return buffer.getvalue()


def test_an_original_the_browser_cannot_show_gets_a_preview_purged_with_it(alice, bob):
    client = client_for(alice)
    upload_id = post_image(client, _heic((1300, 900)), "photo.heic")["X-Upload-Id"]
    upload = Upload.objects.get(public_id=upload_id)
    with upload.preview.open("rb") as f, Image.open(f) as preview:
        assert preview.format == "JPEG"
        assert preview.width * preview.height <= 1_000_000 and preview.width > 1100
    shown = client.get(f"/remove/uploads/{upload_id}/original/")
    assert shown.status_code == 200 and shown["Cache-Control"] == "private, no-store"
    assert b"".join(shown.streaming_content).startswith(b"\xff\xd8")
    # Nobody else sees it: another account, a visitor.
    assert client_for(bob).get(f"/remove/uploads/{upload_id}/original/").status_code == 404
    assert Client().get(f"/remove/uploads/{upload_id}/original/").status_code == 404

    # A JPEG the browser shows needs none: its original is served as it was uploaded.
    jpeg_id = post_image(client, key="jpeg-upload-0001")["X-Upload-Id"]
    assert not Upload.objects.get(public_id=jpeg_id).preview
    served = client.get(f"/remove/uploads/{jpeg_id}/original/")
    assert b"".join(served.streaming_content) == photo()

    Upload.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert uploads.purge_expired() == 2
    assert not upload.preview.storage.exists(upload.preview.name)
