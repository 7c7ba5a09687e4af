"""How the APIs answer: image bytes through a binary renderer, errors as JSON.

A removal endpoint lists `ERROR_THEN_IMAGE` as its renderers and mixes in `ImageResultMixin`.
Content negotiation never fails (Pixian clients send any `Accept`, or none, and must never get
a 406) and picks the JSON renderer, which is what every error response needs; a view that
returns image bytes gets the image renderer instead, with the result's own content type.
"""

from typing import Any

from django.http.response import HttpResponseBase
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from billing.formatting import dumps


class ImageRenderer(BaseRenderer):
    """Passes bytes through untouched; the response carries the real type (image/png, …)."""

    media_type = "image/*"
    format = "image"
    charset = None
    render_style = "binary"

    def render(
        self,
        data: bytes,
        accepted_media_type: str | None = None,
        renderer_context: dict | None = None,
    ) -> bytes:
        return data


ERROR_THEN_IMAGE = [JSONRenderer, ImageRenderer]


class FirstRendererNegotiation(DefaultContentNegotiation):
    """Parsers chosen as usual; `Accept` ignored: always the view's first renderer (JSON)."""

    def select_renderer(
        self, request: Request, renderers: list[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        return renderers[0], renderers[0].media_type


class AnyAcceptMixin:
    """For every API view: no `Accept` header fails negotiation (DRF would answer 406, or 500
    before the exception handler can render it); the view's first renderer answers."""

    content_negotiation_class = FirstRendererNegotiation


class ImageResultMixin(AnyAcceptMixin):
    """For APIViews that answer `Response(image_bytes, content_type=…)` on success."""

    def finalize_response(
        self, request: Request, response: HttpResponseBase, *args: Any, **kwargs: Any
    ) -> HttpResponseBase:
        if isinstance(response, Response) and isinstance(response.data, bytes | bytearray):
            request.accepted_renderer = ImageRenderer()
            request.accepted_media_type = response.content_type or ImageRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)


class CreditsJSONRenderer(JSONRenderer):
    """DRF's JSON renderer, with Decimals as plain-decimal numbers (billing.formatting.dumps)."""

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: dict | None = None,
    ) -> bytes:
        if data is None:
            return b""
        return dumps(data).encode("utf-8")


def accepts_json(request: Request) -> bool:
    """True when `Accept` asks for JSON at least as much as for an image (remove.bg answers
    `{"data": {"result_b64": …}}` then); `*/*`, an image type or no header mean the image."""
    best_json = best_image = 0.0
    for part in request.headers.get("Accept", "").split(","):
        media, _, parameters = part.partition(";")
        quality = 1.0
        for parameter in parameters.split(";"):
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if not 0.0 <= quality <= 1.0:
            quality = 0.0
        media = media.strip().lower()
        if media == "application/json":
            best_json = max(best_json, quality)
        elif media.startswith("image/"):
            best_image = max(best_image, quality)
    return best_json > 0 and best_json >= best_image
