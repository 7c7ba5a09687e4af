"""The batch API under `/api/v2/batches`, in Pixian's conventions (HTTP Basic, Pixian's error
JSON, Pixian's `X-*` headers on each result). The views only translate: the rules are in
batches/submission.py, batches/work.py and batches/results.py.
"""

from typing import Any

from django.core.files.storage import default_storage
from django.http import FileResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from batches import results, status, submission
from batches.models import Batch, BatchItem
from removal import errors, fingerprint, limits
from removal.api.body import check_body_size
from removal.api.recording import RecordedCallMixin
from removal.api.renderers import AnyAcceptMixin, CreditsJSONRenderer
from removal.api.replay import IdempotentPostMixin
from removal.errors import RemovalError

WIRE_FORMAT = "pixian-batches"


def owned_batch(request: Request, batch_id: Any) -> Batch:
    """The caller's batch; another account's is answered as missing (4040)."""
    batch = Batch.objects.filter(pk=batch_id, user=request.user).first()
    if batch is None:
        raise RemovalError(errors.NOT_FOUND, "No such batch.")
    return batch


class BatchView(RecordedCallMixin, AnyAcceptMixin, APIView):
    wire_format = WIRE_FORMAT
    renderer_classes = [CreditsJSONRenderer]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        limits.check_rate(f"user:{request.user.pk}")

    def answer(self, batch: Batch, *, status_code: int = 200) -> Response:
        return Response(status.summary(batch, with_items=True), status=status_code)


class BatchesView(IdempotentPostMixin, BatchView):
    """POST /api/v2/batches: a JSON batch (started at once) or a multipart one (open)."""

    endpoint_name = idempotency_endpoint = "pixian:batches"
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    def post(self, request: Request) -> HttpResponseBase:
        return self.answer_once(request, lambda: self.parse(request), lambda s: self.create(s))

    def parse(self, request: Request) -> "Parsed":
        check_body_size(request.META)
        if request.content_type.startswith("application/json"):
            parsed, start_now = submission.parse_json(request.data), True
        else:
            parsed, start_now = submission.parse_multipart(request.data, request.FILES), False
        parts = fingerprint.of_parts(self.idempotency_endpoint, start_now, *parsed.parts())
        return Parsed(parsed, start_now, parts, request.build_absolute_uri("/api/v2/batches/"))

    def create(self, parsed: "Parsed") -> Response:
        batch = submission.create(
            self.request.user,
            parsed.submission,
            start_now=parsed.start_now,
            status_url_base=parsed.base_url,
        )
        return self.answer(batch, status_code=201)


class Parsed:
    def __init__(
        self, parsed: submission.Submission, start_now: bool, print_: str, base_url: str
    ) -> None:
        self.submission = parsed
        self.start_now = start_now
        self.fingerprint = print_
        self.base_url = base_url


class BatchDetailView(BatchView):
    """GET: state, counts, credits and every item; DELETE: cancel what has not started."""

    endpoint_name = "pixian:batch"

    def get(self, request: Request, batch_id: Any) -> Response:
        return self.answer(owned_batch(request, batch_id))

    def delete(self, request: Request, batch_id: Any) -> Response:
        return self.answer(submission.cancel(owned_batch(request, batch_id)))


class BatchItemsView(BatchView):
    """POST …/items: more files (multipart) for a batch that has not started."""

    endpoint_name = "pixian:batch-items"
    parser_classes = [MultiPartParser, FormParser]

    def post(self, request: Request, batch_id: Any) -> Response:
        check_body_size(request.META)
        batch = owned_batch(request, batch_id)
        if set(request.data) - {"image"}:
            raise RemovalError(
                errors.BATCH_BODY, "Only image files are added; options are the batch's."
            )
        first = batch.items.count()
        parsed = submission.parse_multipart(
            {**batch.options, **request.data.dict()}, request.FILES, first
        )
        return self.answer(submission.add_items(batch, parsed))


class BatchStartView(BatchView):
    endpoint_name = "pixian:batch-start"

    def post(self, request: Request, batch_id: Any) -> Response:
        return self.answer(submission.start(owned_batch(request, batch_id)))


class BatchItemResultView(BatchView):
    """GET …/items/{n}: the result with Pixian's headers, while it is retained."""

    endpoint_name = "pixian:batch-item"

    def get(self, request: Request, batch_id: Any, number: int) -> HttpResponseBase:
        batch = owned_batch(request, batch_id)
        item = BatchItem.objects.filter(batch=batch, number=number).first()
        if item is None:
            raise RemovalError(errors.NOT_FOUND, "No such item in this batch.")
        if item.state != BatchItem.State.SUCCEEDED or not item.result_name:
            raise RemovalError(errors.BATCH_NO_RESULT)
        response = FileResponse(
            default_storage.open(item.result_name, "rb"), content_type=item.result_content_type
        )
        for name, value in item.result_headers.items():
            response[name] = value
        return response


class BatchZipView(BatchView):
    """GET …/results.zip: every retained result, streamed as it is read."""

    endpoint_name = "pixian:batch-zip"

    def get(self, request: Request, batch_id: Any) -> HttpResponseBase:
        batch = owned_batch(request, batch_id)
        response = StreamingHttpResponse(results.zip_stream(batch), content_type="application/zip")
        response["Content-Disposition"] = f'attachment; filename="batch-{batch.pk}.zip"'
        return response
