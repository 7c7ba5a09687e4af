import base64
import re

import pytest
from django.core.management import call_command
from django.urls import reverse
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from removal import keys
from removal.models import ApiKey
from tests.conftest import make_key


class WhoAmI(APIView):
    """A real APIView using the project's default authentication and exception handler."""

    wire_format = "pixian"

    def get(self, request):
        return Response({"email": request.user.email, "key": request.auth.key_id})


factory = APIRequestFactory()


def call(**headers):
    request = factory.get("/api/v2/whoami", **headers)
    response = WhoAmI.as_view()(request)
    if hasattr(response, "render"):  # a success is DRF's Response; errors are plain JSON
        response.render()
    return response


def basic(key_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{key_id}:{secret}".encode()).decode()


def assert_error(response, status: int, code: int):
    assert response.status_code == status
    assert response.data["error"] == {
        "status": status,
        "code": code,
        "message": response.data["error"]["message"],
    }
    assert response.data["error"]["message"]


def test_key_formats_and_storage(alice):
    key, secret = keys.create_key(alice, "laptop")
    assert re.fullmatch(r"[a-z0-9]{15}", key.key_id)
    assert len(secret) == 32 and ":" not in secret
    stored = ApiKey.objects.get(pk=key.pk)
    assert secret not in stored.secret_hmac
    assert stored.secret_hmac == keys.hash_secret(secret)


def test_basic_auth_with_a_valid_pair(alice, alice_key):
    response = call(HTTP_AUTHORIZATION=basic(*alice_key))
    assert response.status_code == 200
    assert response.data == {"email": alice.email, "key": alice_key[0]}
    assert ApiKey.objects.get(key_id=alice_key[0]).last_used_at is not None


def test_x_api_key_with_a_valid_pair(alice, alice_key):
    response = call(HTTP_X_API_KEY=f"{alice_key[0]}:{alice_key[1]}")
    assert response.status_code == 200
    assert response.data["email"] == alice.email


def test_no_credentials_is_401_with_basic_challenge(db):
    response = call()
    assert_error(response, 401, 4001)
    assert response["WWW-Authenticate"] == 'Basic realm="Cutout"'


def test_several_keys_per_account_work_independently(alice):
    first = make_key(alice, "one")
    second = make_key(alice, "two")
    keys.revoke(ApiKey.objects.get(key_id=first[0]))
    assert_error(call(HTTP_AUTHORIZATION=basic(*first)), 401, 4002)
    assert call(HTTP_AUTHORIZATION=basic(*second)).status_code == 200


@pytest.mark.parametrize(
    "header",
    [
        "Bearer abc",
        "Basic",
        "Basic !!!notbase64!!!",
        "Basic " + base64.b64encode(b"nocolon").decode(),
        "Basic " + base64.b64encode(b":secretonly").decode(),
        "Basic " + base64.b64encode(b"idonly:").decode(),
        "Basic " + base64.b64encode(b"\xff\xfe:\xfa").decode(),
    ],
)
def test_malformed_authorization_is_401_4001(db, header):
    response = call(HTTP_AUTHORIZATION=header)
    assert_error(response, 401, 4001)
    assert response["WWW-Authenticate"] == 'Basic realm="Cutout"'


@pytest.mark.parametrize("value", ["nocolon", ":secret", "id:", "\xe9\xe9:\xe9"])
def test_malformed_x_api_key_is_401_4001(db, value):
    assert_error(call(HTTP_X_API_KEY=value), 401, 4001)


def test_unknown_wrong_and_revoked_keys_are_401_4002(alice, alice_key):
    key_id, secret = alice_key
    assert_error(call(HTTP_AUTHORIZATION=basic("zzzzzzzzzzzzzzz", secret)), 401, 4002)
    assert_error(call(HTTP_AUTHORIZATION=basic(key_id, secret[:-1] + "x")), 401, 4002)
    keys.revoke(ApiKey.objects.get(key_id=key_id))
    assert_error(call(HTTP_AUTHORIZATION=basic(key_id, secret)), 401, 4002)


def test_inactive_users_keys_are_refused(alice, alice_key):
    alice.is_active = False
    alice.save()
    assert_error(call(HTTP_AUTHORIZATION=basic(*alice_key)), 401, 4002)


def test_api_auth_failures_are_limited_per_address(alice, alice_key):
    for _ in range(30):
        assert_error(
            call(HTTP_AUTHORIZATION=basic("zzzzzzzzzzzzzzz", "x"), REMOTE_ADDR="10.1.1.1"),
            401,
            4002,
        )
    blocked = call(HTTP_AUTHORIZATION=basic(*alice_key), REMOTE_ADDR="10.1.1.1")
    assert_error(blocked, 429, 4290)
    assert int(blocked["Retry-After"]) >= 1
    assert call(HTTP_AUTHORIZATION=basic(*alice_key), REMOTE_ADDR="10.1.1.2").status_code == 200


def test_create_api_key_prints_a_working_pair(db, capsys):
    call_command("create_api_key", "carol@example.com", "--create-user", "--name", "ci")
    line = capsys.readouterr().out
    assert re.fullmatch(r"[a-z0-9]{15} [A-Za-z0-9_-]{32}\n", line)
    key_id, secret = line.split()
    assert call(HTTP_AUTHORIZATION=basic(key_id, secret)).status_code == 200


def test_create_api_key_for_an_unknown_account_fails_without_create_user(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="--create-user"):
        call_command("create_api_key", "nobody@example.com")


def test_api_keys_page_shows_the_secret_once_and_a_reload_creates_nothing(client, alice):
    client.force_login(alice)
    response = client.post(reverse("api_keys"), {"name": "phone"})
    assert response.status_code == 302 and response["Location"] == reverse("api_keys")
    body = client.get(reverse("api_keys")).content.decode()
    key = ApiKey.objects.get(user=alice)
    secret = re.search(r'data-testid="new-key-secret">([^<]+)<', body).group(1)
    assert keys.verify(key.key_id, secret) == key
    assert f"curl -u {key.key_id}:{secret} -F image=@photo.jpg" in body
    again = client.get(reverse("api_keys")).content.decode()  # a reload
    assert secret not in again and "new-key-secret" not in again
    assert ApiKey.objects.filter(user=alice).count() == 1


def test_revoking_asks_first_then_revokes(client, alice):
    client.force_login(alice)
    key, _ = keys.create_key(alice, "laptop")
    url = reverse("revoke_api_key", args=[key.key_id])
    question = client.get(url)
    assert question.status_code == 200 and "Revoke this key?" in question.content.decode()
    key.refresh_from_db()
    assert key.revoked_at is None
    assert client.post(url).status_code == 302
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert client.get(url).status_code == 404  # nothing left to revoke


def test_bob_cannot_revoke_alices_key(client, alice_key, bob):
    client.force_login(bob)
    url = reverse("revoke_api_key", args=[alice_key[0]])
    assert client.get(url).status_code == 404
    assert client.post(url).status_code == 404
    assert ApiKey.objects.get(key_id=alice_key[0]).revoked_at is None


def test_anonymous_cannot_revoke(client, alice_key):
    url = reverse("revoke_api_key", args=[alice_key[0]])
    assert client.get(url).status_code == 302
    assert client.post(url).status_code == 302
    assert ApiKey.objects.get(key_id=alice_key[0]).revoked_at is None
