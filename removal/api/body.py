"""Request bodies: the `CUTOUT_MAX_UPLOAD_MB` cap, shared by every API's views and applied to
the website's paths by webapp/bodies.py's middleware."""

from django.conf import settings

from removal import errors
from removal.errors import RemovalError


def check_body_size(meta: dict, limit: int | None = None) -> None:
    """413 (code 1004) from the declared length, before a byte of the body is read; 411
    (code 4110) for a body sent without a length that the server did not de-chunk. `limit`
    (bytes) is a path's own tighter cap; CUTOUT_MAX_UPLOAD_MB otherwise.

    Django reads no body without a Content-Length, so the declared length bounds what any
    parser will see; Django's own limits are raised to the same cap in settings.
    """
    if not meta.get("CONTENT_LENGTH") and meta.get("HTTP_TRANSFER_ENCODING"):
        raise RemovalError(errors.LENGTH_REQUIRED)
    if limit is None:
        limit = settings.CUTOUT_MAX_UPLOAD_MB * 1024 * 1024
    try:
        length = int(meta.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > limit:
        raise RemovalError(
            errors.BODY_TOO_LARGE,
            f"The request body is {length:,} bytes; at most {limit / 1048576:.0f} MB "
            f"({limit:,} bytes) are accepted.",
        )
