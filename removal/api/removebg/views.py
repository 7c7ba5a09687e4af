"""remove.bg v1.0's views, to the letter of spec/removebg-v1.md.

They only translate the wire format: fields in (options.py), the image (or remove.bg's JSON
with `result_b64`) and its `X-*` headers out. The checks run in the spec's order:
authentication (`X-Api-Key` or HTTP Basic; 403) in DRF's `initial()`, the rate and
concurrency limits (429), the body's declared size (413), the input and options (400), then
the service (`removal.services.remove_background`) for the probe, the credits (402) and the
work. remove.bg does not charge for "no foreground found", so neither does this endpoint.
"""

import base64
import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from django.http.response import HttpResponseBase
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from billing import ledger
from billing.formatting import format_credits
from removal import errors, fingerprint, improvements, inputs, limits, params, services
from removal.api.body import check_body_size
from removal.api.recording import RecordedCallMixin
from removal.api.removebg.options import MAX_IMAGE_BYTES, REMOVEBG_INPUTS, parse_removebg_options
from removal.api.renderers import (
    ERROR_THEN_IMAGE,
    AnyAcceptMixin,
    CreditsJSONRenderer,
    ImageResultMixin,
    accepts_json,
)
from removal.api.replay import IdempotentPostMixin, removal_context
from removal.auth import BasicApiKeyAuthentication, HeaderApiKeyAuthentication
from removal.engine import decode
from removal.engine.types import ENGINE_HEADER, RemovalOptions
from removal.errors import RemovalError
from removal.inputs import ImageInput
from removal.services import Removal

AUTHENTICATION = [HeaderApiKeyAuthentication, BasicApiKeyAuthentication]
BOUNDS = decode.ImageBounds(max_bytes=MAX_IMAGE_BYTES)
PARSERS = [MultiPartParser, FormParser, JSONParser]


@dataclass(frozen=True)
class RemoveBgRequest:
    image: ImageInput
    options: RemovalOptions
    product: str
    fingerprint: str


def _fields(request: Request) -> Mapping:
    """The body's fields; a JSON body must be an object."""
    data = request.data
    if not isinstance(data, Mapping):
        raise RemovalError(errors.UNPARSABLE_BODY, "The JSON body must be an object of fields.")
    return data


def result_headers(removal: Removal, options: RemovalOptions) -> dict[str, str]:
    """remove.bg's `X-*` headers for a result and what it cost."""
    result = removal.result
    box = result.result_foreground
    headers = {
        "X-Credits-Charged": format_credits(removal.charged),
        "X-Width": str(result.result_size[0]),
        "X-Height": str(result.result_size[1]),
        "X-Type": "other",
        "X-Foreground-Top": str(box.top),
        "X-Foreground-Left": str(box.left),
        "X-Foreground-Width": str(box.width),
        "X-Foreground-Height": str(box.height),
    }
    if removal.test:
        headers["X-Credits-Calculated"] = format_credits(removal.calculated)
    width, height = result.input_size
    if width * height > options.max_pixels:
        # The largest size this `size` allows for the input's aspect ratio.
        factor = math.sqrt(options.max_pixels / (width * height))
        headers["X-Max-Width"] = str(max(1, math.floor(width * factor)))
        headers["X-Max-Height"] = str(max(1, math.floor(height * factor)))
    # Reseller mode: which engine ran (the upstream's Pixian headers are not remove.bg's).
    if ENGINE_HEADER in result.headers:
        headers[ENGINE_HEADER] = result.headers[ENGINE_HEADER]
    return headers


def rate_headers(account: str) -> dict[str, str]:
    state = limits.rate_state(account)
    if state is None:
        return {}
    return {
        "X-RateLimit-Limit": str(state.limit),
        "X-RateLimit-Remaining": str(state.remaining),
        "X-RateLimit-Reset": str(state.reset),
    }


class RemoveBgView(RecordedCallMixin, ImageResultMixin, IdempotentPostMixin, APIView):
    wire_format = "removebg"
    endpoint_name = idempotency_endpoint = "removebg:removebg"
    authentication_classes = AUTHENTICATION
    parser_classes = PARSERS
    renderer_classes = ERROR_THEN_IMAGE

    def post(self, request: Request) -> HttpResponseBase:
        account = f"user:{request.user.pk}"
        with limits.limited(account):
            response = self.answer_once(
                request, lambda: self.parse(request), lambda parsed: self.remove(request, parsed)
            )
        for name, value in rate_headers(account).items():
            response[name] = value
        return response

    def parse(self, request: Request) -> RemoveBgRequest:
        check_body_size(request.META)
        fields = _fields(request)
        image = inputs.select_input(fields, request.FILES, REMOVEBG_INPUTS)
        parsed = parse_removebg_options(fields, request.FILES)
        return RemoveBgRequest(
            image,
            parsed.options,
            parsed.product,
            fingerprint.of_request(self.idempotency_endpoint, parsed.options, image),
        )

    def remove(self, request: Request, parsed: RemoveBgRequest) -> Response:
        removal = services.remove_background(
            request.user,
            parsed.image,
            parsed.options,
            reference=f"api:{request.request_id}",
            product=parsed.product,
            context=removal_context(
                request,
                self.idempotency_endpoint,
                parsed.fingerprint,
                filename=parsed.image.filename,
            ),
            call=request.call,
            bounds=BOUNDS,
            require_foreground=True,
        )
        headers = result_headers(removal, parsed.options)
        result = removal.result
        if accepts_json(request):
            box = result.result_foreground
            body = {
                "data": {
                    "result_b64": base64.b64encode(result.body).decode("ascii"),
                    "foreground_top": box.top,
                    "foreground_left": box.left,
                    "foreground_width": box.width,
                    "foreground_height": box.height,
                }
            }
            return Response(body, headers=headers)
        return Response(result.body, content_type=result.content_type, headers=headers)


class AccountView(RecordedCallMixin, AnyAcceptMixin, APIView):
    """GET /v1.0/account: remove.bg's account JSON from Cutout's ledger (credits available
    now are all pay-as-you-go; there are no subscriptions or free calls)."""

    wire_format = "removebg"
    endpoint_name = "removebg:account"
    authentication_classes = AUTHENTICATION
    renderer_classes = [CreditsJSONRenderer]

    def get(self, request: Request) -> Response:
        credits = ledger.account_summary(request.user).credits
        return Response(
            {
                "data": {
                    "attributes": {
                        "credits": {
                            "total": credits,
                            "subscription": Decimal(0),
                            "payg": credits,
                            "enterprise": Decimal(0),
                        },
                        "api": {"free_calls": 0, "sizes": "all"},
                    }
                }
            }
        )


class ImproveView(RecordedCallMixin, AnyAcceptMixin, APIView):
    """POST /v1.0/improve: keep an image for the operator; nothing charged."""

    wire_format = "removebg"
    endpoint_name = "removebg:improve"
    authentication_classes = AUTHENTICATION
    parser_classes = PARSERS
    renderer_classes = [CreditsJSONRenderer]

    def post(self, request: Request) -> Response:
        with limits.limited(f"user:{request.user.pk}"):
            check_body_size(request.META)
            fields = _fields(request)
            image = inputs.select_input(fields, request.FILES, REMOVEBG_INPUTS)
            improvement = improvements.submit(
                request.user,
                image,
                filename=_text(params.given(fields, "image_filename")),
                tag=_text(params.given(fields, "tag")),
            )
        return Response({"id": improvement.public_id})


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""
