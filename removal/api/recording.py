"""The HTTP side of the call records (removal/calls.py): every call that reaches an API view,
or one of the website's calls, leaves one record, whatever it answers.

A view mixes in `RecordedCallMixin` and names its `endpoint_name` (and `channel`, `api` by
default). The mixin puts a `Call` on the request before anything else runs, so services and
the charging path can fill in the work's outcome, and writes the record from the answer:
status, the neutral error code (the exception handler leaves it on the request), the account
and key that authenticated — or, for a wrong secret, the owner of the key id that was tried.
"""

import logging
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from rest_framework.request import Request

from removal import calls
from removal.models import ApiKey, CallRecord

logger = logging.getLogger(__name__)


def _who(request: Request | None, django_request: HttpRequest) -> tuple[Any, ApiKey | None]:
    user = getattr(request, "_user", None)
    key = getattr(request, "_auth", None)
    if isinstance(user, AbstractBaseUser) and user.is_authenticated:
        return user, key if isinstance(key, ApiKey) else None
    failed = getattr(django_request, "failed_api_key", None)
    if isinstance(failed, ApiKey):
        return failed.user, failed
    return None, None


class RecordedCallMixin:
    channel: str = CallRecord.Channel.API
    endpoint_name: str = ""
    wire_format: str = ""

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        call = calls.Call(
            channel=self.channel,
            wire_format=self.wire_format,
            endpoint=self.endpoint_name or request.path_info,
            request_id=getattr(request, "request_id", ""),
        )
        request.call = call
        response = super().dispatch(request, *args, **kwargs)  # type: ignore[misc]
        try:
            call.user, call.api_key = _who(getattr(self, "request", None), request)
            error = getattr(request, "removal_error", None)
            calls.finish(call, response.status_code, error.code if error else None)
        except Exception:  # a boundary: the record must never cost the client its answer
            logger.exception("could not record call %s", call.request_id)
        return response
