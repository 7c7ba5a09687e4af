"""Client for the upstream Pixian-compatible API (reseller mode); the only code that calls it.

One pooled `httpx.Client` per process keeps connections alive. Every call has one deadline
that covers every try and every wait. Pixian's rules for clients are followed:

- `429`: wait 5 s, then 10 s, 15 s ... (linear, counted per worker thread, reset after a
  success), or what `Retry-After` says, while the deadline allows another try.
- Retried: `429`, `502`, `503`, `504` (answers without a result, which Pixian does not charge)
  and transport failures before any byte of an answer. A read time-out is never retried: a
  production call may still finish upstream and be charged there. Since the read time-out is
  the time left before the deadline (Pixian asks for an idle time-out of at least 180 s), a
  time-out leaves no time for another try anyway.
- Never retried: `500` (it may be this image that breaks the upstream) and other `4xx`.

Failures become `RemovalError`s as the README's table says ("The upstream client"):
`_call()` decides waits, time-outs and lost connections, `_failure()` every other
answer. The customer never sees the upstream's credentials or internals; what the operator
must act on is logged at ERROR as "upstream alert: ...".
"""

import functools
import logging
import math
import mimetypes
import os
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import certifi
import httpx
from django.conf import settings

from removal import errors
from removal.errors import RemovalError
from removal.upstream import health
from removal.upstream.answers import (
    UpstreamAccount,
    UpstreamResult,
    error_json,
    parse_account,
    parse_result,
    retry_after,
)

logger = logging.getLogger(__name__)

REMOVE_PATH = "/api/v2/remove-background"
ACCOUNT_PATH = "/api/v2/account"
USER_AGENT = "Cutout (reseller mode)"

# Answers without a result (Pixian charges only for results), worth another try.
_RETRY_STATUSES = frozenset({502, 503, 504})
# The operator's account is at fault (credentials, credits, permissions): alert, don't blame
# the customer.
_ACCOUNT_STATUSES = frozenset({401, 402, 403})
# An upstream `400`'s code -> Cutout's code for the same cause. Cutout's input codes are
# Pixian's numbers (Pixian documents 1006, "Failed to read the supplied image"); any other
# upstream code becomes 1099 with the upstream's message. Option codes (2xxx) are not mapped:
# Pixian's numbering of them is not published, and a wrong mapping would mislead.
UPSTREAM_400_CODES: dict[int, int] = {code: code for code in range(1001, 1010)}
# An error body past this is not Pixian's error JSON; don't read megabytes of HTML.
_ERROR_BODY_LIMIT = 64 * 1024
_NOT_FORWARDED = frozenset({"image", "image.base64", "image.url"})


@dataclass(frozen=True)
class _Answer:
    status: int
    headers: httpx.Headers
    body: bytes


class _NoAnswerError(Exception):
    """The try failed before any byte of an answer (refused, reset): no result, so no charge."""

    def __init__(self, reason: str, *, timed_out: bool = False) -> None:
        super().__init__(reason)
        self.timed_out = timed_out


class _LostAnswerError(Exception):
    """The request was sent and the answer never arrived whole: never retried."""

    def __init__(self, reason: str, *, timed_out: bool, status: int | None = None) -> None:
        super().__init__(reason)
        self.timed_out = timed_out
        self.status = status


class UpstreamClient:
    """A Pixian-compatible API at `base_url` (scheme and host, e.g. `https://api.pixian.ai`).

    `backoff_s` is the linear step after `429`s; `error_wait_s` the step between tries after
    `502`/`503`/`504` or a failed connection, which get at most `max_tries` tries in all.
    A retry starts only if `min_try_s` of the deadline is left for it: a production try cut
    off by the deadline might still be charged upstream. `sleep` is how waits are spent.
    """

    def __init__(
        self,
        base_url: str,
        api_id: str,
        api_secret: str,
        *,
        deadline_s: float = 170.0,
        backoff_s: float = 5.0,
        error_wait_s: float = 1.0,
        max_tries: int = 3,
        min_try_s: float = 15.0,
        connect_timeout_s: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.deadline_s = deadline_s
        self.backoff_s = backoff_s
        self.error_wait_s = error_wait_s
        self.max_tries = max(1, max_tries)
        self.min_try_s = min_try_s
        self.connect_timeout_s = connect_timeout_s
        self._sleep = sleep
        self._local = threading.local()
        self._http = httpx.Client(
            base_url=self.base_url,
            auth=httpx.BasicAuth(api_id, api_secret),
            # Images are compressed already; identity keeps Content-Length the body's length.
            headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"},
            follow_redirects=False,
            trust_env=False,
            # No Nagle delay between the request's headers and its body.
            transport=httpx.HTTPTransport(
                verify=_tls_context(), socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
            ),
        )

    def close(self) -> None:
        self._http.close()

    # Pixian counts consecutive 429s per thread, across calls, until a success.
    @property
    def strikes(self) -> int:
        """Consecutive `429`s seen by this thread since its last success."""
        return getattr(self._local, "strikes", 0)

    @strikes.setter
    def strikes(self, value: int) -> None:
        self._local.strikes = value

    def remove_background(
        self,
        image: bytes,
        filename: str,
        params: Mapping[str, str],
        *,
        idempotency_key: str | None = None,
    ) -> UpstreamResult:
        """Remove the background of `image` upstream, with Pixian's parameters by name.

        `params` are form strings (`{"test": "true", "output.format": "png"}`); the image goes
        as the multipart file `image`. `idempotency_key` is sent as `Idempotency-Key` on every
        try. Raises `RemovalError` (table in the README) when no result can be had in time.
        """
        bad = _NOT_FORWARDED.intersection(params)
        if bad:
            raise ValueError(f"the image goes in `image`, not in params: {sorted(bad)}")
        content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}

        def build(timeout: httpx.Timeout) -> httpx.Request:
            return self._http.build_request(
                "POST",
                REMOVE_PATH,
                data=dict(params),
                files={"image": (filename or "image", image, content_type)},
                headers=headers,
                timeout=timeout,
            )

        answer, tries = self._call(build, "remove-background", keyed=bool(idempotency_key))
        try:
            return parse_result(answer.headers, answer.body, tries)
        except ValueError as exc:
            # Billing mirrors X-Credits-Charged, and the customer must get a whole image.
            _alert(f"remove-background: a {answer.status} with {exc}; upstream may have charged")
            raise RemovalError(errors.UPSTREAM_FAILED) from None

    def account(self) -> UpstreamAccount:
        """The upstream account's pack, state, `useBefore` and remaining credits.

        Raises `RemovalError` like `remove_background`.
        """

        def build(timeout: httpx.Timeout) -> httpx.Request:
            return self._http.build_request("GET", ACCOUNT_PATH, timeout=timeout)

        answer, _ = self._call(build, "account")
        try:
            return parse_account(answer.body)
        except ValueError as exc:
            _alert(f"account: {exc}")
            raise RemovalError(errors.UPSTREAM_FAILED) from None

    # --- the loop: tries, waits and the deadline ----------------------------------------

    def _call(
        self, build: Callable[[httpx.Timeout], httpx.Request], what: str, *, keyed: bool = False
    ) -> tuple[_Answer, int]:
        deadline = time.monotonic() + self.deadline_s
        tries = 0
        error_tries = 0
        while True:
            tries += 1
            try:
                answer = self._try(build, deadline)
            except _NoAnswerError as exc:
                error_tries += 1
                wait = self.error_wait_s * error_tries
                if error_tries < self.max_tries and self._time_for(wait, deadline):
                    logger.info("upstream %s: %s; try %d in %.2f s", what, exc, tries + 1, wait)
                    self._sleep(wait)
                    continue
                if exc.timed_out:
                    logger.warning("upstream %s: no connection before the deadline: %s", what, exc)
                    raise RemovalError(errors.UPSTREAM_TIMEOUT) from None
                _alert(f"{what}: no answer after {tries} tries: {exc}")
                raise RemovalError(errors.UPSTREAM_UNAVAILABLE) from None
            except _LostAnswerError as exc:
                if exc.status == 200:
                    # The upstream has probably charged for a result we could not deliver.
                    _alert(
                        f"{what}: a successful answer was lost ({exc}); upstream may have charged"
                    )
                else:
                    logger.warning("upstream %s: answer lost after sending: %s", what, exc)
                raise RemovalError(
                    errors.UPSTREAM_TIMEOUT if exc.timed_out else errors.UPSTREAM_FAILED
                ) from None

            if 200 <= answer.status < 300:
                self.strikes = 0
                return answer, tries
            if answer.status == 429:
                self.strikes += 1
                given = retry_after(answer.headers.get("Retry-After"))
                wait = given if given is not None else self.backoff_s * self.strikes
                health.note_backoff(wait)
                if self._time_for(wait, deadline):
                    logger.info(
                        "upstream %s: 429, waiting %.2f s (strike %d)", what, wait, self.strikes
                    )
                    self._sleep(wait)
                    continue
                logger.warning("upstream %s: still 429 at the deadline after %d tries", what, tries)
                raise RemovalError(errors.UPSTREAM_UNAVAILABLE, retry_after=max(1, math.ceil(wait)))
            if answer.status == 409 and keyed:
                # A Cutout upstream still runs an earlier try with this Idempotency-Key (one
                # whose answer we lost); asked again later, it replays that result, uncharged.
                given = retry_after(answer.headers.get("Retry-After"))
                wait = given if given is not None else self.error_wait_s
                if self._time_for(wait, deadline):
                    logger.info("upstream %s: 409, key in progress; waiting %.2f s", what, wait)
                    self._sleep(wait)
                    continue
                raise RemovalError(errors.UPSTREAM_TIMEOUT)
            if answer.status in _RETRY_STATUSES:
                error_tries += 1
                given = retry_after(answer.headers.get("Retry-After"))
                wait = given if given is not None else self.error_wait_s * error_tries
                if error_tries < self.max_tries and self._time_for(wait, deadline):
                    logger.info(
                        "upstream %s: %d; try %d in %.2f s", what, answer.status, tries + 1, wait
                    )
                    self._sleep(wait)
                    continue
            raise _failure(answer, what, tries)

    def _time_for(self, wait: float, deadline: float) -> bool:
        return time.monotonic() + wait + self.min_try_s < deadline

    def _try(self, build: Callable[[httpx.Timeout], httpx.Request], deadline: float) -> _Answer:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _NoAnswerError("the deadline passed", timed_out=True)
        timeout = httpx.Timeout(remaining, connect=min(self.connect_timeout_s, remaining))
        request = build(timeout)
        try:
            response = self._http.send(request, stream=True)
        except (httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise _NoAnswerError(_describe(exc), timed_out=True) from None
        except httpx.TimeoutException as exc:
            raise _LostAnswerError(_describe(exc), timed_out=True) from None
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            _alert(f"CUTOUT_UPSTREAM_URL is not usable: {exc}")
            raise RemovalError(errors.UPSTREAM_UNAVAILABLE) from None
        except httpx.TransportError as exc:
            # Refused, or closed/reset before any byte of an answer: the upstream gave no
            # result, and Pixian charges only for results.
            raise _NoAnswerError(_describe(exc)) from None
        try:
            limit = None if response.status_code == 200 else _ERROR_BODY_LIMIT
            body = _read(response, deadline, limit)
        except httpx.TimeoutException as exc:
            raise _LostAnswerError(
                _describe(exc), timed_out=True, status=response.status_code
            ) from None
        except httpx.TransportError as exc:
            raise _LostAnswerError(
                f"truncated answer: {_describe(exc)}", timed_out=False, status=response.status_code
            ) from None
        finally:
            response.close()
        return _Answer(response.status_code, response.headers, body)


@functools.cache
def _tls_context() -> ssl.SSLContext:
    # Loading the CA bundle takes a tenth of a second or more: once per process is enough.
    return ssl.create_default_context(cafile=certifi.where())


def _read(response: httpx.Response, deadline: float, limit: int | None) -> bytes:
    """The body, or as much as `limit` of it; a slow drip cannot outlast the deadline."""
    declared = response.headers.get("Content-Length", "")
    expected = int(declared) if declared.isdigit() else None
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_raw():
        chunks.append(chunk)
        size += len(chunk)
        if limit is not None and size >= limit:
            break
        # Past the deadline with more to come: each read may wait up to the read time-out.
        more = expected is None or size < expected
        if more and time.monotonic() > deadline:
            raise httpx.ReadTimeout("the deadline passed while reading the answer")
    return b"".join(chunks)


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _alert(text: str) -> None:
    """The operator must act (credentials, credits, configuration, a charged result lost)."""
    logger.error("upstream alert: %s", text)


# --- the error-mapping table (README: "Reseller mode", "The upstream client") -------------


def _failure(answer: _Answer, what: str, tries: int) -> RemovalError:
    """The customer's error for an upstream answer that is not a success and is not retried."""
    error = error_json(answer.body)
    health.note_answer(answer.status, error)
    detail = f"{answer.status} {error}" if error else f"{answer.status} (no error JSON)"
    if answer.status in _ACCOUNT_STATUSES:
        _alert(f"{what}: the upstream refused Cutout's own account: {detail}")
        return RemovalError(errors.UPSTREAM_UNAVAILABLE)
    if answer.status >= 500:
        logger.warning("upstream %s: failed after %d tries: %s", what, tries, detail)
        return RemovalError(errors.UPSTREAM_FAILED)
    if error is None:
        _alert(f"{what}: an answer that is not Pixian's: {detail}")
        return RemovalError(errors.UPSTREAM_FAILED)
    if answer.status == 400:
        code, message = error
        return RemovalError(UPSTREAM_400_CODES.get(code, errors.UPSTREAM_REFUSED), message or None)
    if answer.status == 413:
        return RemovalError(errors.BODY_TOO_LARGE)
    # 404, 405, 415 ...: Cutout sent something this upstream does not serve.
    _alert(f"{what}: the upstream does not take Cutout's request: {detail}")
    return RemovalError(errors.UPSTREAM_FAILED)


# --- one client per process, from the settings --------------------------------------------

_client: UpstreamClient | None = None
_client_key: tuple | None = None
_client_lock = threading.Lock()


def get_client() -> UpstreamClient:
    """The process's client, built from the settings on first use (and again after a fork or a
    settings change). Raises `RemovalError` 5030 when reseller mode is not configured."""
    global _client, _client_key
    key = (
        os.getpid(),
        settings.CUTOUT_UPSTREAM_URL,
        settings.CUTOUT_UPSTREAM_ID,
        settings.CUTOUT_UPSTREAM_SECRET,
        settings.CUTOUT_UPSTREAM_DEADLINE_S,
        settings.CUTOUT_UPSTREAM_BACKOFF_S,
        settings.CUTOUT_UPSTREAM_MAX_TRIES,
    )
    with _client_lock:
        if _client is not None and _client_key == key:
            return _client
        _, url, api_id, secret, deadline_s, backoff_s, max_tries = key
        if not (url and api_id and secret):
            _alert("CUTOUT_UPSTREAM_URL, CUTOUT_UPSTREAM_ID and CUTOUT_UPSTREAM_SECRET must be set")
            raise RemovalError(errors.UPSTREAM_UNAVAILABLE)
        if _client is not None and _client_key is not None and _client_key[0] == os.getpid():
            _client.close()
        _client = UpstreamClient(
            url,
            api_id,
            secret,
            deadline_s=deadline_s,
            backoff_s=backoff_s,
            error_wait_s=backoff_s / 5,
            max_tries=max_tries,
            min_try_s=min(15.0, deadline_s / 4),
        )
        _client_key = key
        return _client


def remove_background(
    image: bytes,
    filename: str,
    params: Mapping[str, str],
    *,
    idempotency_key: str | None = None,
) -> UpstreamResult:
    """`UpstreamClient.remove_background` on the process's client (see `get_client`)."""
    return get_client().remove_background(image, filename, params, idempotency_key=idempotency_key)


def account() -> UpstreamAccount:
    """`UpstreamClient.account` on the process's client (see `get_client`)."""
    return get_client().account()
