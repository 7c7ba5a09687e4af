"""Try before signing up: a visitor drops a photo on the home page and gets the watermarked
test-mode cut-out, never charged (no account, no ledger).

Bounded before any work: an uploaded file only (no URL fetching for visitors), at most
`MAX_BYTES` and, after `max_pixels` scaling, `MAX_PIXELS`; `CUTOUT_TRYOUT_PER_DAY` try-outs
per client address and day. The count is kept in the cache (removal/limits.py): shared by all
workers with `REDIS_URL`, per process without it. The photo belongs to a random token in the
visitor's session and is deleted after `uploads.TRYOUT_LIFETIME` (an hour), unless the visitor
signs up in that session: then it becomes the new account's upload (`adopt()`).
"""

import dataclasses
import secrets
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.sessions.backends.base import SessionBase

from billing import pricing
from removal import errors, limits, uploads
from removal.engine import decode
from removal.engine.types import RemovalOptions
from removal.errors import RemovalError
from removal.inputs import ImageInput

MAX_BYTES = 10 * 1024 * 1024
# The whole request: the file plus the multipart framing and the option fields.
MAX_BODY_BYTES = MAX_BYTES + 64 * 1024
MAX_PIXELS = 4_000_000
BOUNDS = decode.ImageBounds(max_bytes=MAX_BYTES)
DAY_S = 24 * 3600
VISITOR_KEY = "tryout_visitor"
# Try-outs an account adopted at sign-up, shown (re-rendered) once on its first upload page.
ADOPTED_KEY = "tryout_adopted"


def admitted(address: str) -> bool:
    """Count one try-out for the client `address`; False once its daily quota is spent.

    The one place that decides whether a visitor's free work may start."""
    return limits.hit(f"tryout:address:{address}", DAY_S) <= settings.CUTOUT_TRYOUT_PER_DAY


def uploader_state() -> uploads.UploaderState:
    """The home page's uploader for a visitor: one photo at a time, test mode only."""
    return uploads.UploaderState(
        credits=Decimal(0),
        price=pricing.production_price(),
        test_default=True,
        max_upload_bytes=MAX_BYTES,
        parallel=1,
        tryout=True,
        tryouts_per_day=settings.CUTOUT_TRYOUT_PER_DAY,
    )


def visitor(session: SessionBase, *, create: bool = False) -> str:
    """The visitor's token in `session` ('' when none and not `create`)."""
    token = session.get(VISITOR_KEY, "")
    if not token and create:
        token = secrets.token_urlsafe(24)
        session[VISITOR_KEY] = token
    return token


def tryout_options(options: RemovalOptions) -> RemovalOptions:
    """The visitor's options, always in test mode and scaled down to MAX_PIXELS."""
    return dataclasses.replace(options, test=True, max_pixels=min(options.max_pixels, MAX_PIXELS))


def create_tryout(
    token: str, address: str, image: ImageInput, options: RemovalOptions, key: str
) -> uploads.Rendering:
    """The visitor's photo, analysed and rendered in test mode; 4060 once the address's
    quota is spent, 1040 for a URL, 1014 over MAX_BYTES (checked before the quota counts)."""
    if image.kind == "url":
        raise RemovalError(errors.TRYOUT_NEEDS_FILE)
    decode.probe(image.data, BOUNDS)
    if not admitted(address):
        raise RemovalError(errors.TRYOUT_LIMIT, retry_after=limits.retry_after(DAY_S))
    return uploads.create_upload(
        None, image, tryout_options(options), key=key, visitor=token, bounds=BOUNDS
    )


def render_tryout(token: str, public_id: str, options: RemovalOptions) -> uploads.Rendering:
    """The visitor's try-out again with other options (test mode, free)."""
    upload = uploads.get_upload(None, public_id, visitor=token)
    return uploads.render_upload(upload, tryout_options(options))


def adopt(session: SessionBase, user: AbstractBaseUser) -> None:
    """At sign-up: the session's try-outs become `user`'s uploads, shown on the next page."""
    ids = uploads.adopt_tryouts(visitor(session), user)
    session.pop(VISITOR_KEY, None)
    if ids:
        session[ADOPTED_KEY] = ids


def take_adopted(session: SessionBase) -> list[str]:
    """The adopted try-outs to show, once."""
    return session.pop(ADOPTED_KEY, [])
