"""The HTTP side of `Idempotency-Key` (the rules and the store are in removal/idempotency.py).

An endpoint mixes in `IdempotentPostMixin`, names itself in `idempotency_endpoint`, and runs
its work through `answer_once()`, which replays a stored answer (with the header
`Idempotent-Replayed: true`) or runs the work once and stores what it answered, errors
included, so a replay gets the same status and body and is never charged again.
"""

from collections.abc import Callable

from django.http import HttpResponse
from django.http.response import HttpResponseBase
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from removal import idempotency

# Per-request headers: each answer, a replay too, has its own.
_NOT_REPLAYED = {"content-type", "content-length", "x-request-id", "vary"}


def _stored_form(response: Response) -> tuple[bytes, str, dict]:
    if isinstance(response.data, bytes | bytearray):
        body, content_type = bytes(response.data), response.content_type or ""
    else:
        body, content_type = JSONRenderer().render(response.data), "application/json"
    headers = {k: v for k, v in response.items() if k.lower() not in _NOT_REPLAYED}
    return body, content_type, headers


class IdempotentPostMixin:
    idempotency_endpoint: str = ""

    def answer_once(self, request, work: Callable[[], Response]) -> HttpResponseBase:
        raw = request.headers.get("Idempotency-Key")
        if raw is None:
            return work()
        claimed = idempotency.claim(
            request.user, self.idempotency_endpoint, idempotency.clean_key(raw)
        )
        if isinstance(claimed, idempotency.StoredAnswer):
            replay = HttpResponse(
                claimed.body, status=claimed.status, content_type=claimed.content_type
            )
            for name, value in claimed.headers.items():
                replay[name] = value
            replay["Idempotent-Replayed"] = "true"
            return replay
        try:
            try:
                response = work()
            except Exception as exc:
                # Rendered here rather than by dispatch, so that errors are stored too.
                response = self.handle_exception(exc)
        except BaseException:
            idempotency.abandon(claimed)
            raise
        body, content_type, headers = _stored_form(response)
        idempotency.finish(claimed, response.status_code, content_type, headers, body)
        return response
