"""The batch API as a wire format: its own prefix under Pixian's `/api/`, Pixian's error JSON
(removal/api/formats.py picks the longest prefix, so these paths answer as Pixian does)."""

from django.urls import path, re_path

from batches import api
from removal.api import formats
from removal.api.pixian.format import render_error

FORMAT = formats.WireFormat(
    name=api.WIRE_FORMAT,
    prefix="/api/v2/batches/",
    render_error=render_error,
    routes=[
        re_path(r"^api/v2/batches/?$", api.BatchesView.as_view(), name="batches"),
        path("api/v2/batches/<uuid:batch_id>", api.BatchDetailView.as_view(), name="batch"),
        path(
            "api/v2/batches/<uuid:batch_id>/items",
            api.BatchItemsView.as_view(),
            name="batch_items",
        ),
        path(
            "api/v2/batches/<uuid:batch_id>/start",
            api.BatchStartView.as_view(),
            name="batch_start",
        ),
        path(
            "api/v2/batches/<uuid:batch_id>/items/<int:number>",
            api.BatchItemResultView.as_view(),
            name="batch_item",
        ),
        path(
            "api/v2/batches/<uuid:batch_id>/results.zip",
            api.BatchZipView.as_view(),
            name="batch_zip",
        ),
    ],
    # Described in the README; not (yet) in the OpenAPI document of Pixian's endpoints.
    public=False,
)
