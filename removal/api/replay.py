"""The HTTP side of `Idempotency-Key` (the rules and the store are in removal/idempotency.py).

An endpoint mixes in `IdempotentPostMixin`, names itself in `idempotency_endpoint`, and answers
through `answer_once(request, parse, work)`: `parse()` reads the request into something with a
`fingerprint` (removal/fingerprint.py), `work(parsed)` does the rest. With a key, a stored
answer to the same request is replayed (with `Idempotent-Replayed: true`), the key sent with
another request is refused (422), and otherwise the work runs once and what it answered,
errors included, is stored: status, headers and the very bytes sent. A request refused while
it was read is stored too, under the fingerprint of its refusal.
"""

from collections.abc import Callable
from typing import Protocol, TypeVar

from django.http import HttpResponse
from django.http.response import HttpResponseBase
from rest_framework.request import Request

from removal import fingerprint, idempotency
from removal.engine.types import RemovalContext
from removal.errors import RemovalError

# Per-request headers: each answer, a replay too, has its own.
_NOT_REPLAYED = {"content-type", "content-length", "x-request-id", "vary"}


class Fingerprinted(Protocol):
    fingerprint: str


P = TypeVar("P", bound=Fingerprinted)


class IdempotentPostMixin:
    idempotency_endpoint: str = ""

    def answer_once(
        self,
        request: Request,
        parse: Callable[[], P],
        work: Callable[[P], HttpResponseBase],
    ) -> HttpResponseBase:
        raw = request.headers.get("Idempotency-Key")
        if raw is None:
            return work(parse())
        key = idempotency.clean_key(raw)
        refusal: RemovalError | None = None
        try:
            parsed = parse()
            request_print = parsed.fingerprint
        except RemovalError as exc:
            refusal = exc
            request_print = fingerprint.of_failure(self.idempotency_endpoint, exc)
        claimed = idempotency.claim(request.user, self.idempotency_endpoint, key, request_print)
        if isinstance(claimed, idempotency.StoredAnswer):
            call = getattr(request, "call", None)
            if call is not None:
                call.replay = True
            return replay(claimed)
        try:
            try:
                if refusal is not None:
                    raise refusal
                response = work(parsed)
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


def removal_context(
    request: Request,
    endpoint: str,
    request_print: str,
    *,
    filename: str = "",
    forward: tuple[tuple[str, str], ...] | None = None,
) -> RemovalContext:
    """What the engine gets of an API request; an upstream engine derives its key from the
    account, the endpoint, the customer's `Idempotency-Key` (else the request id) and the
    fingerprint, so a customer's retry sends the upstream the same key."""
    raw = request.headers.get("Idempotency-Key")
    return RemovalContext(
        reference=request.request_id,
        fingerprint=request_print,
        filename=filename,
        account=f"user:{request.user.pk}",
        endpoint=endpoint,
        idempotency_key=idempotency.clean_key(raw) if raw is not None else "",
        forward=forward,
        started=getattr(request, "started", None),
    )
