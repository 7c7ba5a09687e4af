"""Pixian.AI v2's views, to the letter of spec/pixian-v2.md.

They only translate the wire format: form fields in (options.py), the image and Pixian's `X-*`
headers out. Authentication (HTTP Basic) runs first, in DRF's `initial()`; then the rate and
concurrency limits (429, the slot held until the answer is ready), the body's declared size
(413), the input and options (400), and the service (`removal.services.remove_background`)
for the probe, the credits and the work.
"""

from decimal import Decimal

from django.http.response import HttpResponseBase
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from billing import ledger
from billing.formatting import format_credits, format_time
from removal import fingerprint, inputs, limits, services
from removal.api.body import check_body_size
from removal.api.pixian.options import forwarded_fields, parse_pixian_options
from removal.api.recording import RecordedCallMixin
from removal.api.renderers import (
    ERROR_THEN_IMAGE,
    AnyAcceptMixin,
    CreditsJSONRenderer,
    ImageResultMixin,
)
from removal.api.replay import IdempotentPostMixin, removal_context
from removal.engine.types import RemovalResult


def result_headers(
    result: RemovalResult, charged: Decimal, calculated: Decimal, test: bool
) -> dict[str, str]:
    """Pixian's `X-*` headers for a result and what it cost (the website sends them too)."""
    headers = {
        "X-Input-Orientation": str(result.orientation),
        "X-Input-Size": "{} {}".format(*result.input_size),
        "X-Result-Size": "{} {}".format(*result.result_size),
        "X-Input-Foreground": result.input_foreground.header(),
        "X-Result-Foreground": result.result_foreground.header(),
    }
    # Reseller mode: the upstream's own headers as it sent them, and which engine ran.
    headers.update(result.headers)
    # The ledger's figures are Cutout's own, whatever the upstream said.
    headers["X-Credits-Charged"] = format_credits(charged)
    if test:
        headers["X-Credits-Calculated"] = format_credits(calculated)
    return headers


class RemoveBackgroundView(RecordedCallMixin, ImageResultMixin, IdempotentPostMixin, APIView):
    wire_format = "pixian"
    endpoint_name = idempotency_endpoint = "pixian:remove-background"
    parser_classes = [MultiPartParser, FormParser]
    renderer_classes = ERROR_THEN_IMAGE

    def post(self, request: Request) -> HttpResponseBase:
        with limits.limited(f"user:{request.user.pk}"):
            return self.answer_once(
                request, lambda: self.parse(request), lambda parsed: self.remove(request, parsed)
            )

    def parse(self, request: Request) -> fingerprint.ParsedRequest:
        check_body_size(request.META)
        image = inputs.select_input(request.data, request.FILES)
        options = parse_pixian_options(request.data)
        return fingerprint.parsed(self.idempotency_endpoint, image, options)

    def remove(self, request: Request, parsed: fingerprint.ParsedRequest) -> Response:
        removal = services.remove_background(
            request.user,
            parsed.image,
            parsed.options,
            reference=f"api:{request.request_id}",
            context=removal_context(
                request,
                self.idempotency_endpoint,
                parsed.fingerprint,
                filename=parsed.image.filename,
                forward=forwarded_fields(request.data),
            ),
            call=request.call,
        )
        headers = result_headers(removal.result, removal.charged, removal.calculated, removal.test)
        return Response(
            removal.result.body, content_type=removal.result.content_type, headers=headers
        )


class AccountView(RecordedCallMixin, AnyAcceptMixin, APIView):
    """GET /api/v2/account: Pixian's account summary for the authenticated API key's owner."""

    wire_format = "pixian"
    endpoint_name = "pixian:account"
    renderer_classes = [CreditsJSONRenderer]

    def get(self, request: Request) -> Response:
        summary = ledger.account_summary(request.user)
        return Response(
            {
                "creditPack": summary.credit_pack,
                "state": summary.state,
                "useBefore": format_time(summary.use_before),
                "credits": summary.credits,
            }
        )
