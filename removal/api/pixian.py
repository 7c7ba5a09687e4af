"""Pixian.AI v2, to the letter of spec/pixian-v2.md: `POST /api/v2/remove-background`.

This module only translates the wire format: form fields in (removal/params.py), the image
and Pixian's `X-*` headers out. Authentication (HTTP Basic) runs first, in DRF's `initial()`;
then the rate and concurrency limits (429, the slot held until the answer is ready), the
body's declared size (413), the input and options (400), and the service
(`removal.services.remove_background`) for the probe, the credits and the work.
"""

from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.formatting import format_credits
from removal import limits, params, services
from removal.api.body import check_body_size
from removal.api.idempotency import IdempotentPostMixin
from removal.api.renderers import ERROR_THEN_IMAGE, ImageResultMixin


def result_headers(removal: services.Removal) -> dict[str, str]:
    result = removal.result
    headers = {"X-Credits-Charged": format_credits(removal.charged)}
    if removal.test:
        headers["X-Credits-Calculated"] = format_credits(removal.calculated)
    headers.update(
        {
            "X-Input-Orientation": str(result.orientation),
            "X-Input-Size": "{} {}".format(*result.input_size),
            "X-Result-Size": "{} {}".format(*result.result_size),
            "X-Input-Foreground": result.input_foreground.header(),
            "X-Result-Foreground": result.result_foreground.header(),
        }
    )
    return headers


class RemoveBackgroundView(ImageResultMixin, IdempotentPostMixin, APIView):
    error_format = "pixian"
    idempotency_endpoint = "pixian:remove-background"
    parser_classes = [MultiPartParser, FormParser]
    renderer_classes = ERROR_THEN_IMAGE

    def post(self, request):
        return self.answer_once(request, lambda: self.remove(request))

    def remove(self, request) -> Response:
        with limits.limited(f"user:{request.user.pk}"):
            check_body_size(request.META)
            image = params.select_input(request.data, request.FILES)
            options = params.parse_pixian_options(request.data)
            removal = services.remove_background(
                request.user, image, options, reference=f"api:{request.request_id}"
            )
        return Response(
            removal.result.body,
            content_type=removal.result.content_type,
            headers=result_headers(removal),
        )
