"""The upload page's viewer and try-outs in Debian's Chromium against a live server, asserted
on the pixels and the layout the browser produced: the split shows the original on its left
and the cut-out over the checkerboard on its right, the result comes into view and fits the
viewport, zoom magnifies, a HEIC original gets the server's preview, a refused option is
marked. Screenshots go to test-results/screenshots/; with CUTOUT_DOC_SCREENSHOTS=1 the README's
pictures in docs/screenshots/ are rewritten too."""

import io
import os
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from django.test import Client
from PIL import Image
from skimage import data as skdata

from billing.models import LedgerEntry
from removal.models import Upload
from tests.conftest import make_user
from tests.support_billing import give_credits
from tests.support_browser import alerts, download, log_in, ready, shown, wait_shown

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# The README's pictures are rewritten only on request (CUTOUT_DOC_SCREENSHOTS=1), so a test
# run never changes tracked files.
DOCS_SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
WRITE_DOC_SCREENSHOTS = os.environ.get("CUTOUT_DOC_SCREENSHOTS") == "1"
DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
# The stage's checkerboard (static/css/upload.css).
CHECKER = np.array([[255, 255, 255], [0xD9, 0xDC, 0xE2]])
JPEG_TOLERANCE = 2  # Chromium and Pillow decode JPEG a little apart
MARGIN = 100  # samples keep this far (CSS = device px here) from the split and the edges


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("viewer-files")
    # The astronaut in the middle of a wider photo, so that cropping to it cuts both sides.
    astronaut = Image.fromarray(skdata.astronaut()).resize((560, 560), Image.Resampling.LANCZOS)
    photo = Image.fromarray(skdata.coffee()).resize((760, 640), Image.Resampling.LANCZOS)
    photo.paste(astronaut, (100, 40))
    photo.save(folder / "astronaut.jpg", "JPEG", quality=95)
    astronaut.resize((300, 300)).save(folder / "astronaut.heic", "HEIF", quality=90)
    return {"jpeg": folder / "astronaut.jpg", "heic": folder / "astronaut.heic"}


def decoded(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB")).astype(int)


def rgba(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGBA")).astype(int)


def box(page, selector: str) -> dict:
    return page.eval_on_selector(
        selector,
        "el => { const r = el.getBoundingClientRect();"
        " return {x: r.x, y: r.y, width: r.width, height: r.height}; }",
    )


def canvas_pixels(page) -> np.ndarray:
    """The result canvas as the screen shows it, one device pixel per canvas pixel."""
    size = page.eval_on_selector("#result-canvas", "c => [c.width, c.height]")
    page.eval_on_selector("#result-canvas", "c => c.scrollIntoView({block: 'nearest'})")
    where = box(page, "#result-canvas")
    assert (round(where["width"]), round(where["height"])) == tuple(size), "shown 1:1"
    clip = {"x": round(where["x"]), "y": round(where["y"]), "width": size[0], "height": size[1]}
    shot = rgba(page.screenshot(clip=clip))[..., :3]
    assert shot.shape[:2] == (size[1], size[0])
    return shot


def set_split(page, value: int) -> None:
    page.fill("#compare", str(value))


def inside_viewport(page, selector: str, viewport: dict) -> bool:
    where = box(page, selector)
    return (
        where["width"] > 0
        and where["x"] >= 0
        and where["y"] >= 0
        and where["x"] + where["width"] <= viewport["width"] + 0.5
        and where["y"] + where["height"] <= viewport["height"] + 0.5
    )


def assert_split(page, before: np.ndarray, result: np.ndarray, positions: list[int]) -> None:
    """At each position, every sample left of the split is the original (`before`, in result
    coordinates) and every sample right of it the cut-out over the checkerboard."""
    height, width = result.shape[:2]
    ys = np.arange(MARGIN, height - MARGIN + 1, 10)
    for position in positions:
        set_split(page, position)
        screen = canvas_pixels(page)
        split = width * position / 100
        left = np.arange(MARGIN, int(split) - MARGIN + 1, 10)
        right = np.arange(int(np.ceil(split)) + MARGIN, width - MARGIN + 1, 10)
        assert len(left) and len(right), f"no room to sample at {position}%"
        for y in ys:
            for x in left:
                diff = np.abs(screen[y, x] - before[y, x]).max()
                assert diff <= JPEG_TOLERANCE, (position, x, y, screen[y, x], before[y, x])
        seen_checker = seen_subject = 0
        for y in ys:
            for x in right:
                alpha = result[y, x, 3]
                if alpha == 255:
                    assert np.abs(screen[y, x] - result[y, x, :3]).max() <= 1, (position, x, y)
                    seen_subject += 1
                elif alpha == 0:
                    nearest = np.abs(CHECKER - screen[y, x]).max(axis=1).min()
                    assert nearest <= 1, (position, x, y, screen[y, x])
                    seen_checker += 1
        assert seen_checker > 5 and seen_subject > 5, (position, seen_checker, seen_subject)


def server_render(user, upload: Upload, **fields):
    client = Client()
    client.force_login(user)
    response = client.post(f"/remove/uploads/{upload.public_id}/render/", fields)
    assert response.status_code == 200, response.content
    return response


def box_header(text: str) -> tuple[int, int, int, int]:
    top, left, width, height = map(int, text.split())
    return top, left, width, height


def test_the_split_shows_the_original_left_and_the_cut_out_right_also_after_a_crop(
    page, context, live_server, photos, screenshots
):
    user = give_credits(make_user("viewer@example.com"))
    log_in(context, live_server, user)
    page.set_viewport_size(DESKTOP)
    page.goto(live_server.url + "/remove/")
    ready(page)
    page.uncheck("#opt-test")
    page.set_input_files("#file-input", photos["jpeg"])
    wait_shown(page, 0)
    original = decoded(photos["jpeg"])
    result = rgba(download(page))
    assert result.shape[:2] == original.shape[:2]
    assert_split(page, original, result, [35, 50, 65])
    set_split(page, 50)
    page.screenshot(path=screenshots / "viewer-split.png")

    # Cropped to the subject: the original is cropped the same way (X-Input-Foreground).
    before = shown(page)
    page.check("#opt-crop")
    wait_shown(page, before)
    page.wait_for_function("document.getElementById('viewer').dataset.state === 'done'")
    upload = Upload.objects.get(user=user)
    answer = server_render(user, upload, **{"result.crop_to_foreground": "true"})
    top, left, width, height = box_header(answer["X-Input-Foreground"])
    cropped = rgba(download(page))
    assert cropped.shape[:2] == (height, width) and width < original.shape[1]
    assert_split(page, original[top : top + height, left : left + width], cropped, [48, 50, 52])
    page.screenshot(path=screenshots / "viewer-split-cropped.png")
    assert [e.amount for e in LedgerEntry.objects.filter(kind="charge")] == [Decimal(-1)]


@pytest.mark.parametrize(
    ("viewport", "name"), [(DESKTOP, "upload-desktop.png"), (PHONE, "upload-phone.png")]
)
def test_the_page_brings_progress_then_the_result_into_view_and_fits_it(
    page, context, live_server, photos, screenshots, viewport, name
):
    log_in(context, live_server, make_user("fits@example.com"))
    page.set_viewport_size(viewport)
    page.goto(live_server.url + "/remove/")
    ready(page)
    # Hold the upload's answer until the progress has been seen in view.
    held = []
    page.route("**/remove/uploads/", lambda route: held.append(route))
    page.set_input_files("#file-input", photos["jpeg"])
    page.wait_for_function("() => !document.getElementById('progress-area').hidden")
    assert inside_viewport(page, "#progress", viewport)
    for _ in range(200):  # the route's handler runs while Playwright waits
        if held:
            break
        page.wait_for_timeout(50)
    held[0].continue_()
    wait_shown(page, 0)
    page.unroute("**/remove/uploads/")
    assert inside_viewport(page, "#result-canvas", viewport)
    assert inside_viewport(page, "#compare", viewport)
    set_split(page, 50)
    page.screenshot(path=screenshots / name)
    if WRITE_DOC_SCREENSHOTS:
        page.screenshot(path=DOCS_SCREENSHOTS / name)


def test_zoom_shows_the_result_magnified_and_it_pans(page, context, live_server, photos):
    user = make_user("zoom@example.com")
    log_in(context, live_server, user)
    page.set_viewport_size(DESKTOP)
    page.goto(live_server.url + "/remove/")
    ready(page)
    page.set_input_files("#file-input", photos["jpeg"])
    wait_shown(page, 0)
    result = rgba(download(page))
    set_split(page, 0)  # all cut-out
    unzoomed = box(page, "#result-canvas")
    page.click("[data-testid=zoom-2]")
    zoomed = box(page, "#result-canvas")
    assert abs(zoomed["width"] - 2 * unzoomed["width"]) < 1
    stage = box(page, "#stage")
    shot = rgba(page.screenshot(clip=stage))[..., :3]
    # Each stage pixel shows the canvas pixel under it, magnified 2× (nearest, for edges).
    matched = checked = 0
    for sy in range(20, int(stage["height"]) - 20, 17):
        for sx in range(20, int(stage["width"]) - 20, 17):
            cx = (stage["x"] + sx - zoomed["x"]) / 2
            cy = (stage["y"] + sy - zoomed["y"]) / 2
            if not (1 <= cx < result.shape[1] - 1 and 1 <= cy < result.shape[0] - 1):
                continue
            if result[int(cy), int(cx), 3] != 255:
                continue
            checked += 1
            near = result[int(cy) - 1 : int(cy) + 2, int(cx) - 1 : int(cx) + 2, :3]
            matched += np.abs(near - shot[sy, sx]).max(axis=2).min() <= 1
    assert checked > 50 and matched == checked, (matched, checked)

    # Dragging pans the magnified image.
    centre = (stage["x"] + stage["width"] / 2, stage["y"] + stage["height"] / 2)
    page.mouse.move(*centre)
    page.mouse.down()
    page.mouse.move(centre[0] + 80, centre[1] + 40, steps=4)
    page.mouse.up()
    panned = box(page, "#result-canvas")
    assert panned["x"] - zoomed["x"] == pytest.approx(80, abs=1)
    page.click("[data-testid=zoom-1]")
    assert box(page, "#result-canvas")["width"] == pytest.approx(unzoomed["width"], abs=0.5)


def test_a_heic_original_is_shown_from_the_servers_preview(
    page, context, live_server, photos, screenshots
):
    user = make_user("heic@example.com")
    log_in(context, live_server, user)
    page.set_viewport_size(DESKTOP)
    page.goto(live_server.url + "/remove/")
    ready(page)
    page.set_input_files("#file-input", photos["heic"])
    wait_shown(page, 0)
    page.wait_for_function("document.getElementById('original').naturalWidth > 0")
    page.wait_for_function("document.getElementById('before-canvas').dataset.drawn === 'true'")
    upload = Upload.objects.get(user=user)
    assert upload.preview.name.endswith("preview.jpg")
    with upload.preview.open("rb") as f, Image.open(f) as preview:
        assert preview.format == "JPEG" and preview.size == (300, 300)
    assert page.eval_on_selector("#original", "im => im.naturalWidth") == 300
    set_split(page, 100)  # all original: drawn from the preview
    screen = canvas_pixels(page)
    expected = rgba(upload.preview.open("rb").read())[..., :3]
    assert np.abs(screen[50:250, 50:250] - expected[50:250, 50:250]).mean() < 3
    page.screenshot(path=screenshots / "heic-preview.png")


def test_a_refused_option_is_marked_on_its_field_and_the_result_is_marked_stale(
    page, context, live_server, photos, screenshots
):
    log_in(context, live_server, make_user("stale@example.com"))
    page.set_viewport_size(DESKTOP)
    page.goto(live_server.url + "/remove/")
    ready(page)
    page.set_input_files("#file-input", photos["jpeg"])
    wait_shown(page, 0)
    assert page.get_attribute("#viewer", "data-stale") == "false"
    page.fill("#opt-margin", "lots")
    page.dispatch_event("#opt-margin", "change")
    page.wait_for_selector("#opt-margin[aria-invalid=true]")
    assert page.get_attribute("#viewer", "data-stale") == "true"
    assert page.is_visible("[data-testid=stale-note]")
    note = page.inner_text("#opt-margin-error")
    assert note.startswith("result.margin must be") and note.endswith(".")
    assert "opt-margin-error" in page.get_attribute("#opt-margin", "aria-describedby")
    assert "result.margin must be" in alerts(page)
    page.screenshot(path=screenshots / "bad-option.png", full_page=True)

    before = shown(page)
    page.fill("#opt-margin", "10px")
    page.dispatch_event("#opt-margin", "change")
    wait_shown(page, before)
    assert page.get_attribute("#opt-margin", "aria-invalid") is None
    assert page.get_attribute("#viewer", "data-stale") == "false"
    assert not page.is_visible("[data-testid=stale-note]")


def test_a_visitor_tries_a_photo_then_signs_up_and_keeps_it(
    page, live_server, photos, screenshots, settings
):
    settings.CUTOUT_TRYOUT_PER_DAY = 1
    page.set_viewport_size(DESKTOP)
    page.goto(live_server.url)
    ready(page)
    assert page.get_attribute("#uploader", "data-mode") == "tryout"
    assert page.is_checked("#opt-test") and page.is_disabled("#opt-test")
    page.set_input_files("#file-input", photos["jpeg"])
    wait_shown(page, 0)
    assert inside_viewport(page, "#result-canvas", DESKTOP)
    upload = Upload.objects.get()
    assert upload.user is None and not LedgerEntry.objects.exists()

    # The watermark is on screen: where the clean cut-out is transparent, the shown pixels
    # are not all checkerboard.
    with upload.alpha.open("rb") as f, Image.open(f) as im:
        clean_alpha = np.asarray(im.convert("L"))
    set_split(page, 0)
    screen = canvas_pixels(page)
    background = screen[clean_alpha == 0]
    off_checker = np.abs(background[:, None, :] - CHECKER[None]).max(axis=2).min(axis=1) > 8
    assert off_checker.mean() > 0.01, off_checker.mean()
    set_split(page, 50)
    page.screenshot(path=screenshots / "tryout.png")
    if WRITE_DOC_SCREENSHOTS:
        page.screenshot(path=DOCS_SCREENSHOTS / "tryout.png")

    # The day's quota is spent: said, with a way on.
    page.set_input_files("#file-input", photos["heic"])
    page.wait_for_function("document.getElementById('alerts').innerText.includes('Sign up')")
    assert "free try-outs" in alerts(page)
    assert Upload.objects.count() == 1
    page.screenshot(path=screenshots / "tryout-limit.png")

    # Signing up in this session keeps the photo: it renders on the first page, unuploaded.
    from django.core import mail

    from tests.conftest import PASSWORD

    page.click("header a.button")
    page.fill("input[name=email]", "tried@example.com")
    page.click("form button[type=submit]")
    page.wait_for_url("**/signup/sent/")
    link = next(w for w in mail.outbox[-1].body.split() if "/signup/confirm/" in w)
    page.goto(link)
    page.fill("input[name=password1]", PASSWORD)
    page.fill("input[name=password2]", PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_url(live_server.url + "/")
    ready(page)
    assert page.get_attribute("#uploader", "data-mode") == "account"
    wait_shown(page, 0)
    upload.refresh_from_db()
    assert upload.user.email == "tried@example.com"
    assert Upload.objects.count() == 1 and not LedgerEntry.objects.filter(kind="charge").exists()
    page.wait_for_function("document.getElementById('before-canvas').dataset.drawn === 'true'")
    page.screenshot(path=screenshots / "tryout-kept.png")
