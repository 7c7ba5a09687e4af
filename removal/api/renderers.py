"""How the APIs answer: image bytes through a binary renderer, errors as JSON.

A removal endpoint lists `ERROR_THEN_IMAGE` as its renderers and mixes in `ImageResultMixin`.
Content negotiation never fails (Pixian clients send any `Accept`, or none, and must never get
a 406) and picks the JSON renderer, which is what every error response needs; a view that
returns image bytes gets the image renderer instead, with the result's own content type.
"""

from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response


class ImageRenderer(BaseRenderer):
    """Passes bytes through untouched; the response carries the real type (image/png, …)."""

    media_type = "image/*"
    format = "image"
    charset = None
    render_style = "binary"

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        return data


ERROR_THEN_IMAGE = [JSONRenderer, ImageRenderer]


class FirstRendererNegotiation(DefaultContentNegotiation):
    """Parsers chosen as usual; `Accept` ignored: always the view's first renderer (JSON)."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class ImageResultMixin:
    """For APIViews that answer `Response(image_bytes, content_type=…)` on success."""

    content_negotiation_class = FirstRendererNegotiation

    def finalize_response(self, request, response, *args, **kwargs):
        if isinstance(response, Response) and isinstance(response.data, bytes | bytearray):
            request.accepted_renderer = ImageRenderer()
            request.accepted_media_type = response.content_type or ImageRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)
