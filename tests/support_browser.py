"""Browser fixtures: Debian's Chromium through pytest-playwright, never a downloaded browser.

Registered in tests/conftest.py `pytest_plugins`. Mark browser tests `@pytest.mark.browser`.
"""

import base64
import functools
import http.server
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

from tests.support_ci import require

# Playwright's sync API runs an event loop in the test thread; Django would otherwise refuse
# ORM calls from tests that also drive the browser against `live_server`.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

# Overridable so CI can be shown failing when the browser is missing.
CHROMIUM = os.environ.get("CUTOUT_TEST_CHROMIUM") or "/usr/bin/chromium"
STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
BLANK_PAGE = b"<!doctype html><html lang=en><title>blank</title><body></body></html>"


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:
    require(f"Chromium at {CHROMIUM} (apt-get install chromium)", Path(CHROMIUM).exists())
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": ["--disable-background-networking", "--no-sandbox", "--headless=new"],
    }


@pytest.fixture(scope="session")
def browser_files(tmp_path_factory) -> Path:
    """A folder whose files the static server serves under /files/."""
    return tmp_path_factory.mktemp("browser-files")


class _StaticHandler(http.server.SimpleHTTPRequestHandler):
    """Serves static/ at /, the test files at /files/ and an empty page at /blank."""

    files_dir: Path

    def do_GET(self) -> None:
        if self.path == "/blank":
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(BLANK_PAGE)))
            self.end_headers()
            self.wfile.write(BLANK_PAGE)
            return
        super().do_GET()

    def translate_path(self, path: str) -> str:
        if path.startswith("/files/"):
            return str(self.files_dir / path.removeprefix("/files/").split("?")[0])
        return super().translate_path(path)

    def log_message(self, format: str, *args) -> None:
        pass


@pytest.fixture(scope="session")
def static_server(browser_files: Path) -> Iterator[str]:
    """A real HTTP server on 127.0.0.1:0 for static/ (ES modules need an http origin)."""
    handler = functools.partial(
        type("Handler", (_StaticHandler,), {"files_dir": browser_files}),
        directory=str(STATIC_DIR),
    )
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def blank_page(page, static_server: str):
    """A page on the static server's origin, ready to `import('/js/delta-png.js')`."""
    page.goto(f"{static_server}/blank")
    return page


@pytest.fixture(scope="session")
def screenshots(pytestconfig) -> Path:
    """Where tests save screenshots to look at: test-results/screenshots/, or under
    pytest-playwright's `--output` folder (which it empties when a session starts)."""
    folder = pytestconfig.rootpath / pytestconfig.getoption("--output") / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# JS helpers for page.evaluate: bytes cross the bridge as base64 text.
JS_BASE64 = """
  const toBase64 = (bytes) => {
    let text = "";
    for (let i = 0; i < bytes.length; i += 0x8000) {
      text += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    }
    return btoa(text);
  };
  const fromBase64 = (text) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
"""


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str) -> bytes:
    return base64.b64decode(text)


# --- the website's upload page (templates/removal/_uploader.html) ---------------------------


def log_in(context, live_server, user) -> None:
    client = Client()
    client.force_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    context.add_cookies(
        [{"name": settings.SESSION_COOKIE_NAME, "value": cookie.value, "url": live_server.url}]
    )


def ready(page) -> None:
    page.wait_for_selector("#uploader[data-ready=true]")


def shown(page) -> int:
    return int(page.eval_on_selector("#uploader", "el => Number(el.dataset.shown || 0)"))


def wait_shown(page, more_than: int, timeout: float = 90_000) -> None:
    page.wait_for_function(
        "n => Number(document.getElementById('uploader').dataset.shown || 0) > n",
        arg=more_than,
        timeout=timeout,
    )


def alerts(page) -> str:
    return page.inner_text("#alerts")


def download(page, button: str = "#download") -> bytes:
    with page.expect_download() as info:
        page.click(button)
    return Path(info.value.path()).read_bytes()
