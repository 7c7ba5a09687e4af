"""Baidu's request bodies: JSON or a form, told apart by the body itself.

A body that starts with `{` is JSON whatever its `Content-Type` says (the vendor's PHP sample
labels JSON as a form, its C# sample sends no type); anything else is read as a form, which is
what Baidu's SDKs post. The size cap is checked from the headers before a byte is read.
"""

import json
from collections.abc import Mapping
from typing import Any

from django.http import QueryDict
from rest_framework.request import Request

from removal import errors
from removal.api.body import check_body_size
from removal.errors import RemovalError


def fields_of(request: Request) -> Mapping[str, Any]:
    """The body's fields (read once per request): JSON values, or a form's last values."""
    django_request = request._request
    cached = getattr(django_request, "baidu_fields", None)
    if cached is not None:
        return cached
    check_body_size(request.META)
    fields: Mapping[str, Any]
    if request.content_type.lower().startswith("multipart/form-data"):
        # Not Baidu's, but a form all the same (the token's parameters, from a browser form).
        form = django_request.POST
        django_request.baidu_fields = {name: form[name] for name in form}
        return django_request.baidu_fields
    raw = django_request.body
    if raw.lstrip()[:1] == b"{":
        try:
            fields = json.loads(raw)
        except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
            raise RemovalError(
                errors.UNPARSABLE_BODY, f"The body starts with '{{' but is not JSON: {exc}."
            ) from None
        if not isinstance(fields, dict):
            raise RemovalError(errors.UNPARSABLE_BODY, "The JSON body must be an object.")
    else:
        form = QueryDict(raw, encoding="utf-8")
        fields = {name: form[name] for name in form}
    django_request.baidu_fields = fields
    return fields


def parameter(request: Request, name: str) -> Any:
    """`name` from the query string, else from the body (Baidu takes both)."""
    value = request.query_params.get(name)
    if value:
        return value
    return fields_of(request).get(name)
