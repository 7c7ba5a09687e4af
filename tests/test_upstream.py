"""The upstream Pixian client against a real stand-in server (tests/support_upstream.py).

Waits are scaled down to milliseconds: each test asserts what the caller gets, how many tries
reached the server, and the waits the client took (and that the server saw them as gaps).
"""

import base64
import logging
import socket
import threading
import time
from datetime import UTC, datetime
from decimal import Decimal
from email.utils import format_datetime

import pytest

from removal import upstream
from removal.engine.types import Box, RemovalResult
from removal.errors import ERRORS, RemovalError
from removal.upstream import UpstreamClient, to_removal_result
from tests.support_upstream import (
    API_SECRET,
    error,
    png_bytes,
    reset,
    stall,
    stall_body,
    success,
    text,
    truncated,
)

IMAGE = png_bytes((20, 10))
SLACK_S = 0.005  # the server's clock sees a gap a hair shorter than the sleep, never much


class Waits(list):
    """A real `sleep` that also records how long each wait was."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)
        time.sleep(seconds)


def alerts(caplog) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name.startswith("removal.upstream") and record.levelno >= logging.ERROR
    ]


def assert_gaps_cover(fake, waits: list[float]) -> None:
    gaps = fake.gaps()
    assert len(gaps) == len(waits)
    for gap, wait in zip(gaps, waits, strict=True):
        assert gap >= wait - SLACK_S


def test_a_success_sends_pixian_fields_and_parses_every_header(fake_pixian):
    fake_pixian.reply(success(charged="0", calculated="0.25"))
    params = {"test": "true", "output.format": "png", "result.margin": "5px 10%"}

    result = fake_pixian.client().remove_background(IMAGE, "photo.png", params)

    seen = fake_pixian.seen[0]
    assert (seen.method, seen.path) == ("POST", "/api/v2/remove-background")
    assert seen.headers["content-type"].startswith("multipart/form-data")
    credentials = base64.b64encode(f"{fake_pixian.api_id}:{API_SECRET}".encode()).decode()
    assert seen.headers["authorization"] == f"Basic {credentials}"
    assert seen.fields == params
    assert seen.files == {"image": ("photo.png", IMAGE)}
    assert "idempotency-key" not in seen.headers
    assert result.body == png_bytes() and result.content_type == "image/png"
    assert result.credits_charged == Decimal("0") and isinstance(result.credits_charged, Decimal)
    assert result.credits_calculated == Decimal("0.25")
    assert (result.input_size, result.result_size) == ((12, 16), (16, 12))
    assert result.input_foreground == Box(top=1, left=2, width=10, height=14)
    assert result.result_foreground == Box(top=2, left=1, width=14, height=10)
    assert result.orientation == 6 and result.tries == 1


def test_a_production_result_becomes_the_engines_result_with_the_upstream_charge(fake_pixian):
    fake_pixian.reply(success(charged="1.50"))

    result = fake_pixian.client().remove_background(IMAGE, "photo.png", {})

    assert result.credits_charged == Decimal("1.5") and result.credits_calculated is None
    assert to_removal_result(result) == RemovalResult(
        body=png_bytes(),
        content_type="image/png",
        input_size=(12, 16),
        result_size=(16, 12),
        input_foreground=Box(1, 2, 10, 14),
        result_foreground=Box(2, 1, 14, 10),
        orientation=6,
        upstream_credits="1.5",
        # Passed through to a Pixian-format answer as sent; the credits are Cutout's own.
        headers={
            "X-Input-Orientation": "6",
            "X-Input-Size": "12 16",
            "X-Result-Size": "16 12",
            "X-Input-Foreground": "1 2 10 14",
            "X-Result-Foreground": "2 1 14 10",
        },
    )


def test_missing_size_and_box_headers_read_as_zeros(fake_pixian):
    reply = success()
    for name in ("X-Input-Size", "X-Result-Foreground", "X-Input-Orientation"):
        del reply.headers[name]
    reply.headers["X-Result-Size"] = "sixteen twelve"
    fake_pixian.reply(reply)

    result = fake_pixian.client().remove_background(IMAGE, "photo.png", {})

    assert (result.input_size, result.result_size) == ((0, 0), (0, 0))
    assert result.result_foreground == Box() and result.orientation == 1


def test_calls_reuse_one_kept_alive_connection(fake_pixian):
    client = fake_pixian.client()

    for _ in range(3):
        client.remove_background(IMAGE, "photo.png", {})

    assert fake_pixian.tries == 3
    assert len({seen.port for seen in fake_pixian.seen}) == 1


def test_the_idempotency_key_goes_with_every_try(fake_pixian):
    fake_pixian.reply(error(503, 5030, "busy"), success())

    fake_pixian.client().remove_background(IMAGE, "a.png", {}, idempotency_key="req-42")

    assert [seen.headers["idempotency-key"] for seen in fake_pixian.seen] == ["req-42"] * 2


def test_a_409_for_a_key_still_in_progress_is_asked_again_until_it_replays(fake_pixian):
    busy = error(409, 4090, "A request with this Idempotency-Key is still in progress.")
    busy.headers["Retry-After"] = "0"
    fake_pixian.reply(busy, busy, busy, success())
    waits = Waits()

    result = fake_pixian.client(sleep=waits).remove_background(IMAGE, "a", {}, idempotency_key="k")

    assert result.tries == 4 and waits == [0.0, 0.0, 0.0]


def test_a_409_without_a_key_is_5020_and_an_alert(fake_pixian, caplog):
    fake_pixian.reply(error(409, 4090, "Conflict."), success())

    with pytest.raises(RemovalError) as caught:
        fake_pixian.client().remove_background(IMAGE, "a.png", {})

    assert caught.value.code == 5020 and fake_pixian.tries == 1
    assert len(alerts(caplog)) == 1


def test_the_image_never_travels_in_params(fake_pixian):
    with pytest.raises(ValueError, match=r"image\.url"):
        fake_pixian.client().remove_background(IMAGE, "a.png", {"image.url": "http://x/"})
    assert fake_pixian.tries == 0


# --- 429: Pixian's linear backoff ---------------------------------------------------------


def test_429s_wait_linearly_and_the_count_resets_after_a_success(fake_pixian):
    busy = error(429, 4290, "Rate limit reached.")
    fake_pixian.reply(busy, busy, busy, success(), busy, busy, success())
    waits = Waits()
    client = fake_pixian.client(backoff_s=0.02, sleep=waits)

    first = client.remove_background(IMAGE, "a.png", {})
    assert (first.tries, waits) == (4, pytest.approx([0.02, 0.04, 0.06]))
    second = client.remove_background(IMAGE, "a.png", {})

    assert second.tries == 3 and fake_pixian.tries == 7
    assert waits == pytest.approx([0.02, 0.04, 0.06, 0.02, 0.04])
    gaps = fake_pixian.gaps()
    for gap, wait in zip(gaps[:3] + gaps[4:], waits, strict=True):
        assert gap >= wait - SLACK_S


def test_429_past_the_deadline_is_5030_with_retry_after(fake_pixian, caplog):
    fake_pixian.reply(*[error(429, 4290, "Rate limit reached.")] * 10)
    waits = Waits()
    client = fake_pixian.client(backoff_s=0.1, deadline_s=0.5, sleep=waits)

    with pytest.raises(RemovalError) as caught:
        client.remove_background(IMAGE, "a.png", {})

    # 0.1 + 0.2 slept; the next wait (0.3) would end past the 0.5 s deadline.
    assert (caught.value.code, caught.value.status, caught.value.retry_after) == (5030, 503, 1)
    assert caught.value.message == ERRORS[5030].message
    assert fake_pixian.tries == 3 and waits == pytest.approx([0.1, 0.2])
    assert_gaps_cover(fake_pixian, waits)
    assert client.strikes == 3
    assert not alerts(caplog)  # load is not the operator's emergency


def test_the_429_count_is_per_thread_and_carries_across_calls_until_a_success(fake_pixian):
    busy = error(429, 4290, "Rate limit reached.")
    waits = Waits()
    client = fake_pixian.client(backoff_s=0.1, deadline_s=0.5, sleep=waits)
    fake_pixian.reply(busy, busy, busy)
    with pytest.raises(RemovalError):
        client.remove_background(IMAGE, "a.png", {})
    assert client.strikes == 3

    fake_pixian.reply(busy, success())
    other = threading.Thread(target=client.remove_background, args=(IMAGE, "a.png", {}))
    other.start()
    other.join()
    assert waits[2:] == pytest.approx([0.1])  # a fresh count in a fresh thread

    fake_pixian.reply(busy, success())
    client.remove_background(IMAGE, "a.png", {})

    assert waits[3:] == pytest.approx([0.4])  # this thread's fourth 429 in a row
    assert client.strikes == 0 and fake_pixian.tries == 7


def test_retry_after_seconds_are_honoured(fake_pixian):
    fake_pixian.reply(error(429, 4290, "Slow down.", Retry_After="1"), success())
    waits = Waits()

    result = fake_pixian.client(backoff_s=0.02, sleep=waits).remove_background(IMAGE, "a", {})

    assert result.tries == 2 and waits == [1.0]
    assert_gaps_cover(fake_pixian, waits)


def test_retry_after_as_an_http_date(fake_pixian):
    past = format_datetime(datetime(2020, 1, 1, tzinfo=UTC), usegmt=True)
    fake_pixian.reply(error(429, 4290, "Slow down.", Retry_After=past), success())
    waits = Waits()

    result = fake_pixian.client(backoff_s=0.02, sleep=waits).remove_background(IMAGE, "a", {})

    assert result.tries == 2 and waits == [0.0]


def test_a_retry_after_beyond_the_deadline_answers_at_once_with_it(fake_pixian):
    fake_pixian.reply(error(429, 4290, "Slow down.", Retry_After="30"), success())
    waits = Waits()

    with pytest.raises(RemovalError) as caught:
        fake_pixian.client(sleep=waits).remove_background(IMAGE, "a.png", {})

    assert (caught.value.code, caught.value.retry_after) == (5030, 30)
    assert fake_pixian.tries == 1 and waits == []


# --- 5xx, lost connections and time-outs --------------------------------------------------


def test_a_500_is_not_retried_even_when_success_would_follow(fake_pixian, caplog):
    fake_pixian.reply(error(500, 5000, "Internal error at worker-7 (trace 9f2c)"), success())
    waits = Waits()

    with pytest.raises(RemovalError) as caught:
        fake_pixian.client(sleep=waits).remove_background(IMAGE, "a.png", {})

    assert (caught.value.code, caught.value.status) == (5020, 502)
    assert caught.value.message == ERRORS[5020].message
    assert fake_pixian.tries == 1 and waits == [] and len(fake_pixian.script) == 1
    assert any("worker-7" in record.getMessage() for record in caplog.records)


def test_503s_then_success(fake_pixian):
    fake_pixian.reply(error(503, 5030, "busy"), error(503, 5030, "busy"), success())
    waits = Waits()

    result = fake_pixian.client(sleep=waits).remove_background(IMAGE, "a.png", {})

    assert result.tries == 3 and waits == pytest.approx([0.01, 0.02])
    assert_gaps_cover(fake_pixian, waits)


def test_a_503_with_retry_after_waits_that_long(fake_pixian):
    fake_pixian.reply(error(503, 5030, "maintenance", Retry_After="0"), success())
    waits = Waits()

    result = fake_pixian.client(error_wait_s=0.05, sleep=waits).remove_background(IMAGE, "a", {})

    assert result.tries == 2 and waits == [0.0]


@pytest.mark.parametrize("status", [502, 503, 504])
def test_5xx_after_the_last_try_is_5020(fake_pixian, status):
    fake_pixian.reply(*[error(status, 5000, "down")] * 3, success())
    waits = Waits()

    with pytest.raises(RemovalError) as caught:
        fake_pixian.client(sleep=waits).remove_background(IMAGE, "a.png", {})

    assert (caught.value.code, caught.value.status) == (5020, 502)
    assert fake_pixian.tries == 3 and waits == pytest.approx([0.01, 0.02])


def test_a_non_json_502_is_retried(fake_pixian):
    fake_pixian.reply(text(502, "<html><h1>502 Bad Gateway</h1>nginx</html>"), success())

    result = fake_pixian.client().remove_background(IMAGE, "a.png", {})

    assert result.tries == 2 and result.body == png_bytes()


def test_non_json_502s_to_the_end_are_5020_without_the_page(fake_pixian):
    fake_pixian.reply(*[text(502, "<html><h1>502 Bad Gateway</h1>nginx</html>")] * 3)

    with pytest.raises(RemovalError) as caught:
        fake_pixian.client().remove_background(IMAGE, "a.png", {})

    assert caught.value.code == 5020 and "nginx" not in caught.value.message
    assert fake_pixian.tries == 3


def test_no_retry_starts_without_min_try_s_left_before_the_deadline(fake_pixian):
    fake_pixian.reply(error(503, 5030, "busy"), success())

    with pytest.raises(RemovalError) as caught:
        fake_pixian.client(deadline_s=0.5, min_try_s=1.0).remove_background(IMAGE, "a", {})

    assert caught.value.code == 5020 and fake_pixian.tries == 1


def test_a_reset_before_any_byte_is_retried(fake_pixian):
    fake_pixian.reply(reset(), success())
    waits = Waits()

    result = fake_pixian.client(sleep=waits).remove_background(IMAGE, "a.png", {})

    assert result.tries == 2 and fake_pixian.tries == 2 and waits == pytest.approx([0.01])


def test_resets_to_the_last_try_are_5030_and_an_alert(fake_pixian, caplog):
    fake_pixian.reply(reset(), reset(), reset(), success())

    with pytest.raises(RemovalError) as caught:
        fake_pixian.client().remove_background(IMAGE, "a.png", {})

    assert (caught.value.code, caught.value.status) == (5030, 503)
    assert fake_pixian.tries == 3
    assert len(alerts(caplog)) == 1


def test_a_refused_connection_is_retried_then_5030(caplog):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    waits = Waits()
    client = UpstreamClient(
        f"http://127.0.0.1:{port}", "id", "secret", error_wait_s=0.01, min_try_s=0, sleep=waits
    )

    with pytest.raises(RemovalError) as caught:
        client.remove_background(IMAGE, "a.png", {})

    assert caught.value.code == 5030 and waits == pytest.approx([0.01, 0.02])
    assert "ConnectError" in alerts(caplog)[0]


def test_a_stall_past_the_deadline_is_5040_and_never_retried(fake_pixian):
    # The stall outlasts any slow machine; the fixture's teardown ends it. Only an upper
    # bound on the wait, and a generous one: the deadline cut the call, the stall did not end.
    fake_pixian.reply(stall(120.0), success())
    started = time.monotonic()

    with pytest.raises(RemovalError) as caught:
        fake_pixian.client(deadline_s=0.3).remove_background(IMAGE, "a.png", {})

    assert time.monotonic() - started < 60
    assert (caught.value.code, caught.value.status) == (5040, 504)
    assert fake_pixian.tries == 1 and len(fake_pixian.script) == 1


def test_a_stall_in_the_middle_of_a_result_is_5040_and_an_alert(fake_pixian, caplog):
    fake_pixian.reply(stall_body(5.0), success())

    with pytest.raises(RemovalError) as caught:
        fake_pixian.client(deadline_s=0.3).remove_background(IMAGE, "a.png", {})

    assert caught.value.code == 5040 and fake_pixian.tries == 1
    assert "may have charged" in alerts(caplog)[0]


@pytest.mark.parametrize("sized", [True, False], ids=["content-length", "connection-close"])
def test_a_truncated_result_is_5020_and_never_retried(fake_pixian, caplog, sized):
    fake_pixian.reply(truncated(sized=sized), success())

    with pytest.raises(RemovalError) as caught:
        fake_pixian.client().remove_background(IMAGE, "a.png", {})

    assert (caught.value.code, caught.value.status) == (5020, 502)
    assert fake_pixian.tries == 1
    assert "may have charged" in alerts(caplog)[0]


@pytest.mark.parametrize(
    "reply",
    [
        success(charged=None),
        success(charged="1e400x"),
        success(body=b'{"ok": true}', content_type="application/json"),
    ],
    ids=["no-credits-header", "bad-credits-header", "not-an-image"],
)
def test_a_success_that_billing_cannot_trust_is_5020_and_an_alert(fake_pixian, caplog, reply):
    fake_pixian.reply(reply)

    with pytest.raises(RemovalError) as caught:
        fake_pixian.client().remove_background(IMAGE, "a.png", {})

    assert caught.value.code == 5020 and fake_pixian.tries == 1
    assert len(alerts(caplog)) == 1


# --- 4xx --------------------------------------------------------------------------------------


def test_a_400_with_error_json_keeps_cutouts_code_for_the_same_cause(fake_pixian):
    fake_pixian.reply(error(400, 1006, "Failed to read the supplied image. "), success())

    with pytest.raises(RemovalError) as caught:
        fake_pixian.client().remove_background(IMAGE, "a.png", {})

    assert (caught.value.code, caught.value.status) == (1006, 400)
    assert caught.value.message == "Failed to read the supplied image."
    assert fake_pixian.tries == 1


def test_a_400_with_a_code_of_no_cause_of_ours_is_1099_with_the_upstreams_message(fake_pixian):
    fake_pixian.reply(error(400, 2104, "result.margin: too many values (at most 4)"))

    with pytest.raises(RemovalError) as caught:
        fake_pixian.client().remove_background(IMAGE, "a.png", {})

    assert (caught.value.code, caught.value.status) == (1099, 400)
    assert caught.value.message == "result.margin: too many values (at most 4)"
    assert fake_pixian.tries == 1


def test_a_400_without_error_json_is_5020(fake_pixian, caplog):
    fake_pixian.reply(text(400, "<html>Bad Request</html>"))

    with pytest.raises(RemovalError) as caught:
        fake_pixian.client().remove_background(IMAGE, "a.png", {})

    assert caught.value.code == 5020 and fake_pixian.tries == 1
    assert len(alerts(caplog)) == 1


def test_a_413_is_cutouts_413(fake_pixian):
    fake_pixian.reply(error(413, 1004, "Too large."))

    with pytest.raises(RemovalError) as caught:
        fake_pixian.client().remove_background(IMAGE, "a.png", {})

    assert (caught.value.code, caught.value.status) == (1004, 413)


def _assert_account_trouble(caught, fake, caplog) -> None:
    assert (caught.value.code, caught.value.status) == (5030, 503)
    assert caught.value.message == ERRORS[5030].message
    assert caught.value.retry_after is None
    assert fake.tries == 1
    assert len(alerts(caplog)) == 1
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert API_SECRET not in logged and fake.api_id not in logged


def test_a_401_for_wrong_credentials_is_5030_and_an_operator_alert(fake_pixian, caplog):
    client = fake_pixian.client(api_secret="revoked-secret-000000000000000000")

    with pytest.raises(RemovalError) as caught:
        client.remove_background(IMAGE, "a.png", {})

    _assert_account_trouble(caught, fake_pixian, caplog)
    assert "401" in alerts(caplog)[0] and "4002" in alerts(caplog)[0]


@pytest.mark.parametrize(
    ("status", "code", "message"),
    [(402, 4020, "Not enough credits."), (403, 4030, "Account suspended.")],
)
def test_402_and_403_are_5030_and_an_operator_alert(fake_pixian, caplog, status, code, message):
    fake_pixian.reply(error(status, code, message), success())

    with pytest.raises(RemovalError) as caught:
        fake_pixian.client().remove_background(IMAGE, "a.png", {})

    _assert_account_trouble(caught, fake_pixian, caplog)
    assert message in alerts(caplog)[0]


def test_a_404_means_a_wrong_upstream_url_5020_and_an_alert(fake_pixian, caplog):
    client = UpstreamClient(fake_pixian.url + "/v2", fake_pixian.api_id, API_SECRET)

    with pytest.raises(RemovalError) as caught:
        client.remove_background(IMAGE, "a.png", {})

    assert caught.value.code == 5020 and fake_pixian.tries == 1
    assert fake_pixian.seen[0].path == "/v2/api/v2/remove-background"
    assert "404" in alerts(caplog)[0]


# --- the account, and the client from the settings -----------------------------------------


def test_account_reads_the_upstreams_credits(fake_pixian):
    account = fake_pixian.client().account()

    assert (fake_pixian.seen[0].method, fake_pixian.seen[0].path) == ("GET", "/api/v2/account")
    assert account.credits == Decimal("812.5") and isinstance(account.credits, Decimal)
    assert (account.credit_pack, account.state) == ("Pixian 1,000", "active")
    assert account.use_before == datetime(2027, 1, 31, 12, tzinfo=UTC)


def test_account_with_wrong_credentials_is_5030(fake_pixian, caplog):
    with pytest.raises(RemovalError) as caught:
        fake_pixian.client(api_secret="wrong-secret-0000000000000000000").account()

    assert caught.value.code == 5030 and len(alerts(caplog)) == 1


def test_account_that_is_not_pixians_json_is_5020(fake_pixian):
    fake_pixian.account = {"balance": 3}

    with pytest.raises(RemovalError) as caught:
        fake_pixian.client().account()

    assert caught.value.code == 5020


def test_the_process_client_comes_from_the_settings(fake_pixian, settings):
    settings.CUTOUT_UPSTREAM_URL = fake_pixian.url
    settings.CUTOUT_UPSTREAM_ID = fake_pixian.api_id
    settings.CUTOUT_UPSTREAM_SECRET = API_SECRET
    settings.CUTOUT_UPSTREAM_DEADLINE_S = 5.0

    result = upstream.remove_background(IMAGE, "a.png", {"test": "true"})
    client = upstream.get_client()
    assert upstream.get_client() is client
    assert (client.deadline_s, client.backoff_s, client.max_tries) == (5.0, 5.0, 3)
    assert upstream.account().credits == Decimal("812.5")
    settings.CUTOUT_UPSTREAM_DEADLINE_S = 9.0

    assert upstream.get_client() is not client and upstream.get_client().deadline_s == 9.0
    assert result.tries == 1 and fake_pixian.seen[0].fields == {"test": "true"}


def test_an_unconfigured_upstream_is_5030_and_an_alert(settings, caplog):
    settings.CUTOUT_UPSTREAM_URL = ""

    with pytest.raises(RemovalError) as caught:
        upstream.remove_background(IMAGE, "a.png", {})

    assert caught.value.code == 5030
    assert "CUTOUT_UPSTREAM_URL" in alerts(caplog)[0]
