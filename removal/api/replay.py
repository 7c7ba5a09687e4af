"""The HTTP side of `Idempotency-Key` (the rules and the store are in removal/idempotency.py).

An endpoint mixes in `IdempotentPostMixin`, names itself in `idempotency_endpoint`, and runs
its work through `answer_once()`, which replays a stored answer (with the header
`Idempotent-Replayed: true`) or runs the work once and stores what it answered, errors
included, so a replay gets the same status, headers and bytes and is never charged again.
"""

from collections.abc import Callable

from django.http import HttpResponse
from django.http.response import HttpResponseBase
from rest_framework.request import Request

from removal import idempotency

# Per-request headers: each answer, a replay too, has its own.
_NOT_REPLAYED = {"content-type", "content-length", "x-request-id", "vary"}


class IdempotentPostMixin:
    idempotency_endpoint: str = ""

    def answer_once(
        self, request: Request, work: Callable[[], HttpResponseBase]
    ) -> HttpResponseBase:
        raw = request.headers.get("Idempotency-Key")
        if raw is None:
            return work()
        claimed = idempotency.claim(
            request.user, self.idempotency_endpoint, idempotency.clean_key(raw)
        )
        if isinstance(claimed, idempotency.StoredAnswer):
            return replay(claimed)
        try:
            try:
                response = work()
            except Exception as exc:
                # Rendered here rather than by dispatch, so that errors are stored too.
                response = self.handle_exception(exc)
            # Rendered now, so that what is stored is the very bytes this answer sends.
            response = self.finalize_response(request, response)
            if hasattr(response, "render"):
                response.render()
        except BaseException:
            idempotency.abandon(claimed)
            raise
        headers = {k: v for k, v in response.items() if k.lower() not in _NOT_REPLAYED}
        idempotency.finish(
            claimed,
            response.status_code,
            response.get("Content-Type", ""),
            headers,
            response.content,
        )
        return response


def replay(answer: idempotency.StoredAnswer) -> HttpResponse:
    response = HttpResponse(answer.body, status=answer.status, content_type=answer.content_type)
    for name, value in answer.headers.items():
        response[name] = value
    response["Idempotent-Replayed"] = "true"
    return response
