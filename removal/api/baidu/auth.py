"""DRF authentication by Baidu access token: `?access_token=…` (or the body's field).

Codes (rendered by the segment format as Baidu's): none given 4005 (Baidu 100), unknown or its
key revoked 4003 (110), expired 4004 (111). Failures count toward the same per-address limit
as wrong API secrets (removal/auth.py).
"""

from django.contrib.auth.base_user import AbstractBaseUser
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request

from removal import errors, tokens
from removal.api.baidu.body import parameter
from removal.auth import counted_failures
from removal.errors import RemovalError
from removal.models import ApiKey


class AccessTokenAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[AbstractBaseUser, ApiKey]:
        def attempt() -> ApiKey:
            token = parameter(request, "access_token")
            if not isinstance(token, str) or not token.strip():
                raise RemovalError(errors.NO_ACCESS_TOKEN)
            return tokens.verify(token.strip())

        api_key = counted_failures(request, attempt)
        return api_key.user, api_key
