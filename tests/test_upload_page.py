"""The website's upload page in Debian's Chromium against a live server: the real views,
engine (u2netp), ledger and static files. Screenshots of each state go to
test-results/screenshots/ (look at them)."""

import io
import re
import zipfile
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from django.core import mail
from django.db import connection
from django.test import Client
from PIL import Image, ImageOps
from skimage import data as skdata

from billing import ledger
from billing.models import LedgerEntry
from removal import limits
from removal.models import Upload
from tests.conftest import PASSWORD, make_user
from tests.support_billing import give_credits
from tests.support_browser import alerts, download, log_in, ready, shown, wait_shown

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

MEGAPIXEL = (1200, 840)  # ~1 MP


def save(image: Image.Image, path: Path, fmt: str, **kwargs) -> Path:
    image.save(path, fmt, **kwargs)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """Real photos (scikit-image's data module) and bad files, written where the browser's
    file picker can take them."""
    folder = tmp_path_factory.mktemp("upload-files")
    astronaut = Image.fromarray(skdata.astronaut())
    chelsea = Image.fromarray(skdata.chelsea())
    coffee = Image.fromarray(skdata.coffee())
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: the camera was turned; the server turns it upright
    return {
        "astronaut": save(
            astronaut.resize(MEGAPIXEL), folder / "astronaut.jpg", "JPEG", quality=90
        ),
        "rotated": save(chelsea, folder / "chelsea-rotated.jpg", "JPEG", quality=92, exif=exif),
        "png": save(coffee.resize((300, 200)), folder / "coffee.png", "PNG"),
        "rocket": save(
            Image.fromarray(skdata.rocket()).resize((240, 360)), folder / "rocket.webp", "WEBP"
        ),
        "text": _write(folder / "notes.txt", b"these are not the pixels you are looking for\n"),
        "big": save(_noise((900, 900)), folder / "noise.png", "PNG"),  # about 2.4 MB
        "tiff": save(coffee.resize((240, 160)), folder / "coffee.tiff", "TIFF"),
        "corrupt": _write(folder / "broken.jpg", b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8),
    }


def _noise(size: tuple[int, int]) -> Image.Image:
    pixels = np.random.default_rng(0).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def _write(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


def charges(user) -> list[LedgerEntry]:
    return list(LedgerEntry.objects.filter(account__user=user, kind="charge"))


def server_render(user, upload: Upload, **fields) -> bytes:
    client = Client()
    client.force_login(user)
    response = client.post(f"/remove/uploads/{upload.public_id}/render/", fields)
    assert response.status_code == 200, response.content
    return response.content


def rgba(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGBA")).astype(int)


def test_a_visitor_signs_up_and_removes_a_background_in_test_mode_then_for_real(
    page, live_server, files, screenshots
):
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(live_server.url)
    page.screenshot(path=screenshots / "01-visitor-home.png", full_page=True)
    assert page.is_visible("[data-testid=tryout-note]")
    page.click("header a.button")  # Sign up
    page.wait_for_url("**/signup/")

    page.fill("input[name=email]", "carol@example.com")
    page.click("form button[type=submit]")
    page.wait_for_url("**/signup/sent/")
    # Sign-up goes on from the mailed link (the test server's mail stays in this process).
    link = re.search(r"http://\S+/signup/confirm/\S+/", mail.outbox[-1].body).group(0)
    page.goto(link)
    page.fill("input[name=password1]", PASSWORD)
    page.fill("input[name=password2]", PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_url(live_server.url + "/")
    ready(page)
    assert page.is_checked("#opt-test"), "no credits yet: test mode starts on"
    assert page.inner_text("#credit-balance") == "0"
    page.screenshot(path=screenshots / "02-signed-in-empty.png", full_page=True)
    for label in (
        "Test mode",
        "Background colour",
        "Crop to the subject",
        "Margin",
        "Vertical alignment",
        "Format",
        "JPEG quality",
    ):
        assert page.get_by_label(label, exact=False).count() >= 1, label

    page.set_input_files("#file-input", files["astronaut"])
    wait_shown(page, 0)
    preview_ms = int(page.eval_on_selector("#uploader", "el => el.dataset.lastPreviewMs"))
    print(f"\ndrop to preview, 1 MP JPEG (1200x840), test mode, delta PNG: {preview_ms} ms")
    assert page.get_attribute("#viewer", "data-kind") == "delta"
    assert "test mode" in page.inner_text("#result-info")
    page.screenshot(path=screenshots / "03-result-test-mode.png", full_page=True)
    upload = Upload.objects.get()
    carol = upload.user
    assert charges(carol) == []

    # The watermark survives the rebuild: the browser's PNG is the server's test-mode PNG.
    rebuilt = rgba(download(page))
    marked = rgba(server_render(carol, upload, test="true", **{"output.format": "png"}))
    assert np.array_equal(rebuilt[..., 3], marked[..., 3])
    with upload.alpha.open("rb") as f:
        clean_alpha = np.asarray(Image.open(f).convert("L"))
    watermark_over_background = (clean_alpha == 0) & (rebuilt[..., 3] > 0)
    assert watermark_over_background.mean() > 0.01

    # Credits arrive; test mode off: the same upload is charged once, then options are free.
    give_credits(carol, Decimal(5))
    before = shown(page)
    page.uncheck("#opt-test")
    wait_shown(page, before)
    assert page.inner_text("#credit-balance") == "4"
    assert "1 credit charged" in page.inner_text("#result-info")

    before = shown(page)
    page.check("#opt-use-background")
    page.fill("#opt-background", "#3366ff")
    page.dispatch_event("#opt-background", "change")
    wait_shown(page, before)
    page.wait_for_function("document.getElementById('viewer').dataset.state === 'done'")
    assert page.get_attribute("#viewer", "data-kind") == "server"
    page.screenshot(path=screenshots / "04-background-colour.png", full_page=True)
    page.fill("#compare", "50")
    page.screenshot(path=screenshots / "04b-before-after.png", full_page=True)
    page.fill("#compare", "100")

    # A bad option value: the server's message, and the last good result stays.
    page.fill("#opt-margin", "lots")
    page.dispatch_event("#opt-margin", "change")
    page.wait_for_function("document.getElementById('alerts').innerText.includes('margin')")
    assert "result.margin must be" in alerts(page)
    page.fill("#opt-margin", "")
    page.dispatch_event("#opt-margin", "change")

    jpeg = download(page)
    with Image.open(io.BytesIO(jpeg)) as result:
        assert result.format == "JPEG" and result.size == MEGAPIXEL
        corner = np.asarray(result.convert("RGB"))[:20, -20:].reshape(-1, 3).mean(axis=0)
    assert np.abs(corner - (0x33, 0x66, 0xFF)).max() < 12, corner
    assert page.inner_text("#credit-balance") == "4"
    assert [e.amount for e in charges(carol)] == [Decimal(-1)]

    # The page's own walk-through on a phone.
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=screenshots / "05-phone.png", full_page=True)


@pytest.mark.parametrize("name", ["astronaut", "rotated", "png"])
def test_the_browsers_rebuild_equals_the_servers_png(
    page, context, live_server, files, screenshots, name
):
    alice = give_credits(make_user("dora@example.com"))
    log_in(context, live_server, alice)
    page.goto(live_server.url + "/remove/")
    ready(page)
    page.uncheck("#opt-test")
    page.set_input_files("#file-input", files[name])
    wait_shown(page, 0)
    assert page.get_attribute("#viewer", "data-kind") == "delta"
    preview_ms = page.eval_on_selector("#uploader", "el => el.dataset.lastPreviewMs")
    marks = page.eval_on_selector("#uploader", "el => el.dataset.lastPreviewMarks")
    rebuilt_png = download(page)
    page.screenshot(path=screenshots / f"06-rebuilt-{name}.png", full_page=True)

    upload = Upload.objects.get(user=alice)
    server = rgba(server_render(alice, upload, **{"output.format": "png"}))
    delta = rgba(server_render(alice, upload, **{"output.format": "delta_png"}))
    rebuilt = rgba(rebuilt_png)
    with Image.open(files[name]) as im:
        oriented = ImageOps.exif_transpose(im)
        assert rebuilt.shape[:2] == (oriented.height, oriented.width)
    print(
        f"\n{name}: {rebuilt.shape[1]}x{rebuilt.shape[0]}, drop to preview {preview_ms} ms {marks}"
    )

    assert np.array_equal(rebuilt[..., 3], server[..., 3])
    from_original = (delta[..., 3] == 0) & (delta[..., 0] == 255)
    from_delta = ~from_original
    visible = from_delta & (server[..., 3] > 0)  # PNG leaves invisible colours undefined
    assert np.array_equal(rebuilt[visible], server[visible])
    tolerance = 0 if name == "png" else 2  # browsers and Pillow decode JPEG a little apart
    diff = np.abs(rebuilt[from_original] - server[from_original])
    assert from_original.sum() > 1000 and diff.max() <= tolerance, diff.max()
    assert [e.amount for e in charges(alice)] == [Decimal(-1)]


def test_a_batch_uploads_with_progress_and_downloads_as_one_zip(
    page, context, live_server, files, screenshots
):
    alice = give_credits(make_user("erin@example.com"))
    log_in(context, live_server, alice)
    page.goto(live_server.url + "/remove/")
    ready(page)
    page.uncheck("#opt-test")
    if connection.vendor == "sqlite":
        # The live server's in-memory SQLite shares one cache between threads, where locks
        # fail at once instead of waiting: one request at a time there (2 on PostgreSQL).
        page.eval_on_selector("#uploader", "el => { el.dataset.parallel = '1'; }")
    page.set_input_files("#file-input", [files["png"], files["rotated"], files["rocket"]])
    page.wait_for_selector("#progress-area:not([hidden])")
    page.screenshot(path=screenshots / "07-batch-progress.png", full_page=True)
    # Three removals one after another: a generous one-sided bound for a loaded CI machine
    # (the default 30 s ran out at a load average of 25 on two cores).
    page.wait_for_function(
        "document.querySelectorAll('#batch .state.done').length === 3", timeout=180_000
    )
    page.wait_for_selector("#progress-area[hidden]", state="attached")
    page.click("#batch li:nth-child(3) button")
    page.screenshot(path=screenshots / "08-batch-done.png", full_page=True)

    archive = zipfile.ZipFile(io.BytesIO(download(page, "#download-zip")))
    assert archive.testzip() is None
    names = sorted(archive.namelist())
    assert names == ["chelsea-rotated-cutout.png", "coffee-cutout.png", "rocket-cutout.png"]
    with Image.open(archive.open("chelsea-rotated-cutout.png")) as im:
        assert im.mode == "RGBA" and im.size == (300, 451)  # upright: EXIF orientation 6
    assert len(charges(alice)) == 3
    assert page.inner_text("#credit-balance") == "97"


def test_bad_files_and_refusals_show_a_message_and_charge_nothing(
    page, context, live_server, files, screenshots, settings
):
    bob = make_user("bob@example.com")  # no credits
    log_in(context, live_server, bob)
    page.goto(live_server.url + "/remove/")
    ready(page)

    page.set_input_files("#file-input", files["text"])
    page.wait_for_function("document.getElementById('alerts').innerText.includes('notes.txt')")
    assert "not an image we can read" in alerts(page)

    page.set_input_files("#file-input", files["corrupt"])
    page.wait_for_function("document.querySelector('#batch .state.failed')")
    assert "broken.jpg: Failed to read the supplied image" in alerts(page)

    page.uncheck("#opt-test")
    page.set_input_files("#file-input", files["png"])
    page.wait_for_function("document.getElementById('alerts').innerText.includes('credits')")
    assert "Not enough credits" in alerts(page) and "Nothing was charged." in alerts(page)
    page.screenshot(path=screenshots / "09-errors.png", full_page=True)

    page.route("**/remove/uploads/", lambda route: route.abort("connectionreset"))
    page.check("#opt-test")
    page.set_input_files("#file-input", files["png"])
    page.wait_for_function("document.getElementById('alerts').innerText.includes('Network')")
    page.unroute("**/remove/uploads/")

    # Another request holds Bob's only slot: 429, retried a few times by the page, then said.
    settings.CUTOUT_CONCURRENCY_LIMIT = 1
    slot = limits.acquire_slot(f"user:{bob.pk}", 1)
    page.set_input_files("#file-input", files["png"])
    page.wait_for_function(
        "document.getElementById('alerts').innerText.includes('too many')", timeout=20_000
    )
    limits.release_slot(*slot)

    settings.CUTOUT_MAX_UPLOAD_MB = 1
    page.reload()
    ready(page)
    assert files["big"].stat().st_size > 1024 * 1024
    page.set_input_files("#file-input", files["big"])
    page.wait_for_function("document.getElementById('alerts').innerText.includes('noise.png')")
    assert "the limit is 1 MB per image" in alerts(page)
    settings.CUTOUT_MAX_UPLOAD_MB = 50

    # The page still works: a good file in test mode goes through.
    page.reload()
    ready(page)
    page.set_input_files("#file-input", files["png"])
    wait_shown(page, 0)
    # Leaving test mode without credits: 402, said, and the page goes back to test mode.
    page.uncheck("#opt-test")
    page.wait_for_function("document.getElementById('alerts').innerText.includes('credits')")
    assert "Not enough credits" in alerts(page)
    assert page.is_checked("#opt-test")
    assert charges(bob) == [] and ledger.balance(bob) == 0


def test_images_can_be_dropped_and_pasted_and_a_tiff_is_rendered_by_the_server(
    page, context, live_server, files, screenshots
):
    log_in(context, live_server, make_user("fay@example.com"))
    page.goto(live_server.url + "/remove/")
    ready(page)
    assert page.is_checked("#opt-test")
    drop = """([bytes, name, type, target]) => {
      const data = new DataTransfer();
      data.items.add(new File([new Uint8Array(bytes)], name, {type}));
      const where = document.querySelector(target);
      if (target === "#dropzone") {
        where.dispatchEvent(new DragEvent("drop", {dataTransfer: data, bubbles: true}));
      } else {
        where.dispatchEvent(new ClipboardEvent("paste", {clipboardData: data, bubbles: true}));
      }
    }"""
    png = list(files["png"].read_bytes())
    page.evaluate(drop, [png, "dropped.png", "image/png", "#dropzone"])
    wait_shown(page, 0)
    assert page.get_attribute("#viewer", "data-kind") == "delta"

    tiff = list(files["tiff"].read_bytes())
    page.evaluate(drop, [tiff, "pasted.tiff", "image/tiff", "body"])
    wait_shown(page, 1)
    assert page.get_attribute("#viewer", "data-kind") == "server"
    # The browser cannot show a TIFF: the viewer draws the server's preview of it.
    page.wait_for_function("document.getElementById('original').naturalWidth === 240")
    assert not page.is_visible("#original-missing")
    assert page.inner_text("#batch").count("done") == 2
    page.screenshot(path=screenshots / "10-paste-tiff.png", full_page=True)
