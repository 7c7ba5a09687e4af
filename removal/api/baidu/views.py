"""Baidu's views, to the letter of spec/baidu-segment.md; they only translate the wire format.

Token: `client_credentials` with the API id and secret → a 30-day token (removal/tokens.py).
Segment: the token first (auth.py, in DRF's `initial()`), then the rate and concurrency limits,
the parameters (options.py), and the service (`removal.services.remove_background`) for the
image's checks, the credits and the work. The answer is JSON with the result in base64 and
the call's `log_id`, which the server's log carries too.
"""

import base64
import logging
from typing import Any

from django.http import HttpRequest
from django.http.response import HttpResponseBase
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from removal import errors, fingerprint, keys, limits, request_ids, services, tokens
from removal.api.baidu import options
from removal.api.baidu.auth import AccessTokenAuthentication
from removal.api.baidu.body import fields_of, parameter
from removal.api.recording import RecordedCallMixin
from removal.api.renderers import AnyAcceptMixin
from removal.api.replay import IdempotentPostMixin, removal_context
from removal.auth import verify_pair
from removal.engine.types import ENGINE_HEADER
from removal.errors import RemovalError

logger = logging.getLogger(__name__)


def _log_id(request: Request) -> int:
    return request_ids.log_id(getattr(request._request, "request_id", ""))


class TokenView(RecordedCallMixin, AnyAcceptMixin, APIView):
    """`/oauth/2.0/token`, GET or POST, the parameters in the query or a form body."""

    wire_format = "baidu-oauth"
    endpoint_name = "baidu:token"
    authentication_classes: list = []
    permission_classes: list = []
    renderer_classes = [JSONRenderer]

    def get(self, request: Request) -> Response:
        def client() -> tuple[str, str]:
            if parameter(request, "grant_type") != "client_credentials":
                raise RemovalError(errors.UNSUPPORTED_GRANT_TYPE)
            client_id = parameter(request, "client_id")
            secret = parameter(request, "client_secret")
            if not isinstance(client_id, str) or not client_id or keys.find(client_id) is None:
                raise RemovalError(errors.UNKNOWN_CLIENT)
            return client_id, secret if isinstance(secret, str) else ""

        user, api_key = verify_pair(request, client)
        request.user, request.auth = user, api_key  # for the call record
        issued = tokens.issue(api_key)
        return Response(
            {
                "access_token": issued.token,
                "expires_in": issued.expires_in,
                "scope": issued.scope,
                "refresh_token": issued.refresh_token,
                "session_key": issued.session_key,
                "session_secret": issued.session_secret,
            },
            headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
        )

    def post(self, request: Request) -> Response:
        return self.get(request)


class SegmentView(RecordedCallMixin, AnyAcceptMixin, IdempotentPostMixin, APIView):
    wire_format = "baidu"
    endpoint_name = idempotency_endpoint = "baidu:segment"
    authentication_classes = [AccessTokenAuthentication]
    renderer_classes = [JSONRenderer]

    def post(self, request: Request) -> HttpResponseBase:
        with limits.limited(f"user:{request.user.pk}"):
            return self.answer_once(
                request, lambda: self.parse(request), lambda parsed: self.segment(request, parsed)
            )

    def parse(self, request: Request) -> fingerprint.ParsedRequest:
        fields = fields_of(request)
        image = options.select_image(fields)
        parsed_options = options.parse_segment_options(fields)
        return fingerprint.parsed(self.idempotency_endpoint, image, parsed_options)

    def segment(self, request: Request, parsed: fingerprint.ParsedRequest) -> Response:
        regions = parsed.options.regions
        removal = services.remove_background(
            request.user,
            parsed.image,
            parsed.options,
            reference=f"api:{request.request_id}",
            context=removal_context(request, self.idempotency_endpoint, parsed.fingerprint),
            call=request.call,
            bounds=options.BOUNDS,
            check=lambda info: options.check_boxes(regions, info),
        )
        image = base64.b64encode(removal.result.body).decode("ascii")
        engine = removal.result.headers.get(ENGINE_HEADER)
        return Response(
            {"log_id": _log_id(request), "image": image},
            headers={ENGINE_HEADER: engine} if engine else None,
        )

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        response = super().dispatch(request, *args, **kwargs)
        # The log_id a customer quotes leads to this line, and so to the request id.
        data = getattr(response, "data", None)
        request_id = getattr(request, "request_id", "")
        logger.info(
            "baidu segment log_id=%d request=%s error_code=%s",
            request_ids.log_id(request_id),
            request_id,
            data.get("error_code") if isinstance(data, dict) else None,
        )
        return response
