"""The website's upload page and the calls its script makes (removal/uploads.py does the
work): create an upload (charged once), re-render it with other options (free), show its
original (or the preview made for it); and the same for a visitor's try-out
(removal/tryouts.py: test mode, never charged).

The calls answer like the Pixian API: the image with `X-*` headers, or Pixian's error JSON
through the one exception handler, plus `X-Upload-Id` and `X-Credits-Balance` for the page.
They check the CSRF token: signed-in calls through session authentication, a visitor's
explicitly (DRF checks it only for authenticated sessions).
"""

from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET
from rest_framework.authentication import SessionAuthentication
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.formatting import format_credits
from removal import inputs, limits, tryouts, uploads
from removal.api.body import check_body_size
from removal.api.pixian.options import given_fields, parse_pixian_options
from removal.api.pixian.views import result_headers
from removal.api.recording import RecordedCallMixin
from removal.api.renderers import ERROR_THEN_IMAGE, ImageResultMixin
from removal.errors import RemovalError
from removal.models import CallRecord
from removal.upstream import health


@login_required
def upload_page(request: HttpRequest) -> HttpResponse:
    return render(request, "removal/upload.html")


def image_response(rendering: uploads.Rendering) -> Response:
    result = rendering.result
    headers = {
        "X-Upload-Id": rendering.upload.public_id,
        "X-Credits-Balance": format_credits(rendering.credits),
        **result_headers(result, rendering.charged, rendering.calculated, rendering.test),
        "Cache-Control": "private, no-store",
    }
    return Response(result.body, content_type=result.content_type, headers=headers)


class PageCallView(RecordedCallMixin, ImageResultMixin, APIView):
    authentication_classes = [SessionAuthentication]
    permission_classes = [IsAuthenticated]
    parser_classes = [MultiPartParser, FormParser]
    renderer_classes = ERROR_THEN_IMAGE
    wire_format = "pixian"
    channel = CallRecord.Channel.WEBSITE


class CreateUploadView(PageCallView):
    endpoint_name = "website:upload"

    def post(self, request: Request) -> Response:
        with limits.limited(f"user:{request.user.pk}"):
            check_body_size(request.META)
            options = parse_pixian_options(request.data)
            image = inputs.select_input(request.data, request.FILES)
            key = uploads.clean_key(request.data.get("key"))
            rendering = uploads.create_upload(
                request.user,
                image,
                options,
                key=key,
                call=request.call,
                fields=given_fields(request.data),
            )
        return image_response(rendering)


class RenderUploadView(PageCallView):
    endpoint_name = "website:render"

    def post(self, request: Request, public_id: str) -> Response:
        upload = uploads.get_upload(request.user, public_id)
        with limits.limited(f"user:{request.user.pk}"):
            options = parse_pixian_options(request.data)
            rendering = uploads.render_upload(
                upload, options, call=request.call, fields=given_fields(request.data)
            )
        return image_response(rendering)


class TryoutCallView(ImageResultMixin, APIView):
    """A visitor's call: no account (so no call record), the session's try-out token."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    parser_classes = [MultiPartParser, FormParser]
    renderer_classes = ERROR_THEN_IMAGE
    wire_format = "pixian"

    def initial(self, request: Request, *args: object, **kwargs: object) -> None:
        super().initial(request, *args, **kwargs)
        # From the declared length, before the CSRF check reads the body for its token.
        check_body_size(request.META, limit=tryouts.MAX_BODY_BYTES)
        SessionAuthentication().enforce_csrf(request)


class CreateTryoutView(TryoutCallView):
    def post(self, request: Request) -> Response:
        address = limits.client_block(limits.client_address(request.META))
        with limits.limited(f"tryout:{address}"):
            options = parse_pixian_options(request.data)
            image = inputs.select_input(request.data, request.FILES)
            key = uploads.clean_key(request.data.get("key"))
            token = tryouts.visitor(request.session, create=True)
            rendering = tryouts.create_tryout(token, address, image, options, key)
        return image_response(rendering)


class RenderTryoutView(TryoutCallView):
    def post(self, request: Request, public_id: str) -> Response:
        address = limits.client_block(limits.client_address(request.META))
        with limits.limited(f"tryout:{address}"):
            options = parse_pixian_options(request.data)
            token = tryouts.visitor(request.session)
            rendering = tryouts.render_tryout(token, public_id, options)
        return image_response(rendering)


@require_GET
def upload_original(request: HttpRequest, public_id: str) -> HttpResponse:
    """The upload's original as the page shows it (its preview when the browser cannot show
    the file); only to its owner: the account, or the visitor's session for a try-out."""
    user = request.user if request.user.is_authenticated else None
    try:
        upload = uploads.get_upload(user, public_id, visitor=tryouts.visitor(request.session))
    except RemovalError as exc:
        raise Http404(exc.message) from None
    response = FileResponse(uploads.original_file(upload).open("rb"))
    response["Cache-Control"] = "private, no-store"
    return response


@staff_member_required
@require_GET
def upstream_status(request: HttpRequest) -> HttpResponse:
    """Reseller mode's upstream for the operator (staff only): health and the last hour."""
    rows = health.lines(health.current(), health.recent_calls())
    return render(request, "removal/upstream_status.html", {"rows": rows})
