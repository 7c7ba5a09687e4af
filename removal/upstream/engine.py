"""`UpstreamRemover`: reseller mode's engine, the upstream Pixian account behind the
two-stage interface (removal/engine/types.py), so that views, website and ledger do not know
which engine ran.

- A Pixian-format call (`context.forward` set) is answered in one upstream call: its option
  fields go on unchanged and the upstream's bytes and `X-*` headers come back as sent (but for
  Cutout's own: removal/upstream/answers.py).
- Everything else (remove.bg, Baidu, the website, batches) asks the upstream for a plain PNG
  cut-out in `analyse()` and renders it here: a `Cutout` of the upstream's alpha and colours,
  marked as already estimated. Boxes (`roi`, Baidu's `control`) send the crop that bounds
  them all and clear the alpha outside them.
- What can fail here fails before the upstream is asked: the image is decoded and the boxes
  resolved first, so a bad request never costs the reseller an upstream credit.
- Each call holds a site-wide upstream slot and one of its account's share
  (`limits.upstream_call`), and sends an `Idempotency-Key` derived from the account, the
  endpoint, the customer's key (or the request id) and the request's fingerprint.
- With a fallback engine (`CUTOUT_RESELLER_FALLBACK=local`), an upstream that cannot serve
  (5020, 5030) is replaced by it for that call when enough of the request's time is left.
"""

import hashlib
import hmac
import logging
import time
from collections.abc import Callable

import cv2
import numpy as np

from removal import errors, limits
from removal.engine import cutouts, decode, encode, regions
from removal.engine.base import Engine
from removal.engine.types import (
    ENGINE_HEADER,
    Cutout,
    RemovalContext,
    RemovalOptions,
    RemovalResult,
    Remover,
)
from removal.errors import RemovalError
from removal.upstream import client, health
from removal.upstream.answers import UpstreamResult, plain_credits, to_removal_result

logger = logging.getLogger(__name__)

# What the upstream cannot serve, so that the local engine may: no answer or out of credits
# (5030), a 5xx after its retries (5020). A time-out (5040) has used the request's time.
FALLBACK_CODES = frozenset({errors.UPSTREAM_UNAVAILABLE, errors.UPSTREAM_FAILED})
# Pixian's smallest max_pixels.
_MIN_PIXELS = 100


def upstream_key(secret: str, context: RemovalContext) -> str:
    """The upstream `Idempotency-Key`: an HMAC of the account, the endpoint, the customer's
    key (else the request's reference) and the request's fingerprint. A customer's retry with
    the same key sends the same upstream key; nothing of the customer's key leaks upstream."""
    parts = (
        context.account,
        context.endpoint,
        context.idempotency_key or context.reference,
        context.fingerprint,
    )
    message = "\x1f".join(parts).encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


class UpstreamRemover(Engine):
    """Thread-safe. `key_secret` signs the upstream keys; `fallback()` builds the local
    engine (None: no fallback), started only if `fallback_s` fits in what is left of
    `request_s` since the request began (`context.started`; else since the call began)."""

    name = "upstream"

    def __init__(
        self,
        key_secret: str,
        *,
        fallback: Callable[[], Remover] | None = None,
        fallback_s: float = 60.0,
        request_s: float = 240.0,
    ) -> None:
        self.key_secret = key_secret
        self.fallback = fallback
        self.fallback_s = fallback_s
        self.request_s = request_s

    # --- the interface ------------------------------------------------------------------

    def remove(
        self, data: bytes, options: RemovalOptions, context: RemovalContext | None = None
    ) -> RemovalResult:
        context = context or RemovalContext()
        started = context.start()
        try:
            if context.forward is not None:
                result = self._forward(data, context)
            else:
                cutout = self._analyse(data, options, context)
                result = self.render(cutout, options)
                result.upstream_credits = cutout.upstream_credits
        except RemovalError as exc:
            local = self._fallback_for(exc, started)
            result = local.remove(data, options, context)
            result.engine = "local"
        result.headers[ENGINE_HEADER] = result.engine
        return result

    def analyse(
        self, data: bytes, options: RemovalOptions, context: RemovalContext | None = None
    ) -> Cutout:
        context = context or RemovalContext()
        started = context.start()
        try:
            return self._analyse(data, options, context)
        except RemovalError as exc:
            return self._fallback_for(exc, started).analyse(data, options, context)

    # --- the two ways upstream ---------------------------------------------------------

    def _forward(self, data: bytes, context: RemovalContext) -> RemovalResult:
        """One upstream call with the customer's own Pixian fields (the service has probed the
        image already)."""
        answer = self._call(data, context.filename, dict(context.forward or ()), context)
        result = to_removal_result(answer)
        result.engine = self.name
        return result

    def _analyse(self, data: bytes, options: RemovalOptions, context: RemovalContext) -> Cutout:
        prepared = cutouts.prepare(data, options.max_pixels)
        height, width = prepared.rgb.shape[:2]
        # Resolved before the upstream call: a box outside the image is refused for free.
        boxes = (
            regions.resolve(options.regions, prepared.full_size, (width, height))
            if options.regions
            else []
        )
        params = {"test": "true" if options.test else "false", "output.format": "png"}
        if boxes:
            x1 = min(box[0] for box in boxes)
            y1 = min(box[1] for box in boxes)
            x2 = max(box[2] for box in boxes)
            y2 = max(box[3] for box in boxes)
            crop = _crop_png(prepared.rgb, prepared.input_alpha, (x1, y1, x2, y2))
            params["max_pixels"] = str(max(_MIN_PIXELS, (x2 - x1) * (y2 - y1)))
            answer = self._call(crop, "crop.png", params, context)
            rgb_part, alpha_part = _layers(answer, (x2 - x1, y2 - y1))
            alpha = np.zeros((height, width), np.uint8)
            rgb = prepared.rgb.copy()
            alpha[y1:y2, x1:x2] = alpha_part
            rgb[y1:y2, x1:x2] = rgb_part
            inside = np.zeros((height, width), bool)
            for bx1, by1, bx2, by2 in boxes:
                inside[by1:by2, bx1:bx2] = True
            alpha[~inside] = 0
        else:
            params["max_pixels"] = str(options.max_pixels)
            answer = self._call(data, context.filename, params, context)
            rgb, alpha = _layers(answer, (width, height))
        if prepared.input_alpha is not None:
            cv2.min(alpha, prepared.input_alpha, dst=alpha)
        cutout = prepared.cutout(alpha)
        # A test result's colours carry the upstream's watermark: estimate them here instead.
        if not options.test:
            cutout.rgb = rgb
            cutout.colours_estimated = True
        cutout.upstream_credits = plain_credits(answer.credits_charged)
        return cutout

    def _call(
        self, image: bytes, filename: str, params: dict[str, str], context: RemovalContext
    ) -> UpstreamResult:
        with limits.upstream_call(context.account or "anonymous"):
            try:
                answer = client.remove_background(
                    image,
                    filename or "image",
                    params,
                    idempotency_key=upstream_key(self.key_secret, context),
                )
            except RemovalError as exc:
                health.record_error(exc)
                raise
        health.record_success()
        return answer

    def _fallback_for(self, exc: RemovalError, started: float) -> Remover:
        """The local engine for a call the upstream could not serve; `exc` again otherwise."""
        if self.fallback is None or exc.code not in FALLBACK_CODES:
            raise exc
        left = self.request_s - (time.monotonic() - started)
        if left < self.fallback_s:
            logger.warning("upstream failed (%s) with %.0f s left: no fallback", exc.code, left)
            raise exc
        logger.warning("upstream failed (%s): this call falls back to the local engine", exc.code)
        return self.fallback()


def _crop_png(
    rgb: np.ndarray, input_alpha: np.ndarray | None, box: tuple[int, int, int, int]
) -> bytes:
    x1, y1, x2, y2 = box
    if input_alpha is None:
        return encode.png(np.ascontiguousarray(rgb[y1:y2, x1:x2]))
    return encode.png_rgba(
        np.ascontiguousarray(rgb[y1:y2, x1:x2]), np.ascontiguousarray(input_alpha[y1:y2, x1:x2])
    )


def _layers(answer: UpstreamResult, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The upstream PNG's colours and alpha at `size` (w, h); a result of another size (the
    upstream scaled by its own rounding) is resized to it."""
    decoded = decode.decode(answer.body)
    rgb = decoded.rgb
    alpha = decoded.alpha
    if alpha is None:
        alpha = np.full(rgb.shape[:2], 255, np.uint8)
    if (rgb.shape[1], rgb.shape[0]) != size:
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        alpha = cv2.resize(alpha, size, interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(rgb), np.ascontiguousarray(alpha)
