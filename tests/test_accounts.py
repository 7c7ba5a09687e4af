import re

import pytest
from django.core import mail, signing
from django.test import Client
from django.urls import reverse

from tests.conftest import PASSWORD, make_user
from webapp.login import COOKIE_NAME as DEVICE_COOKIE
from webapp.models import User


@pytest.mark.django_db
def test_signup_creates_an_account_and_logs_in(client):
    response = client.post(
        reverse("signup"),
        {"email": "New@Example.com", "password1": PASSWORD, "password2": PASSWORD},
    )
    assert response.status_code == 302
    user = User.objects.get()
    assert user.email == "new@example.com"
    assert client.get(reverse("api_keys")).status_code == 200


def test_signup_with_a_taken_email_is_a_form_error(client, alice):
    response = client.post(
        reverse("signup"),
        {"email": "ALICE@example.com", "password1": PASSWORD, "password2": PASSWORD},
    )
    assert response.status_code == 200
    assert "already exists" in response.content.decode()
    assert User.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("password", ["123", "password", "12345678901", "newperson@example.com"])
def test_signup_refuses_weak_passwords(client, password):
    response = client.post(
        reverse("signup"),
        {"email": "newperson@example.com", "password1": password, "password2": password},
    )
    assert response.status_code == 200
    assert response.context["form"].errors["password2"]
    assert not User.objects.exists()


def test_login_with_a_wrong_password_is_a_form_error(client, alice):
    response = client.post(reverse("login"), {"username": alice.email, "password": "wrong"})
    assert response.status_code == 200
    assert "please enter a correct e-mail address and password" in response.content.decode().lower()


def test_login_and_logout(client, alice):
    response = client.post(reverse("login"), {"username": alice.email, "password": PASSWORD})
    assert response.status_code == 302
    assert client.get(reverse("api_keys")).status_code == 200
    client.post(reverse("logout"))
    assert client.get(reverse("api_keys")).status_code == 302


def test_login_is_throttled_per_account_after_ten_failures(client, alice):
    for attempt in range(10):
        client.post(
            reverse("login"),
            {"username": alice.email, "password": "wrong"},
            REMOTE_ADDR=f"10.0.0.{attempt}",
        )
    response = client.post(
        reverse("login"), {"username": alice.email, "password": PASSWORD}, REMOTE_ADDR="10.0.1.1"
    )
    assert response.status_code == 200
    assert "Too many failed log-ins" in response.content.decode()


def test_login_is_throttled_per_address_after_ten_failures(client, alice):
    for attempt in range(10):
        client.post(
            reverse("login"),
            {"username": f"nobody{attempt}@example.com", "password": "wrong"},
            REMOTE_ADDR="10.9.9.9",
        )
    response = client.post(
        reverse("login"), {"username": alice.email, "password": PASSWORD}, REMOTE_ADDR="10.9.9.9"
    )
    assert "Too many failed log-ins" in response.content.decode()
    other = client.post(
        reverse("login"), {"username": alice.email, "password": PASSWORD}, REMOTE_ADDR="10.9.9.8"
    )
    assert other.status_code == 302


# --- Log-in throttling: per address, per account, and per device cookie (webapp/login.py) ---

ADMIN_EMAIL = "root@example.com"


def fail_logins(path: str, email: str, times: int = 10, address: str | None = None) -> None:
    """A stranger's wrong passwords, each from a fresh client (no cookies)."""
    for attempt in range(times):
        Client().post(
            path,
            {"username": email, "password": "wrong"},
            REMOTE_ADDR=address or f"203.0.113.{attempt}",
        )


def log_in(client: Client, path: str, email: str, address: str = "198.51.100.7"):
    return client.post(path, {"username": email, "password": PASSWORD}, REMOTE_ADDR=address)


def logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


@pytest.fixture
def root(db):
    return make_user(ADMIN_EMAIL, is_staff=True, is_superuser=True)


def test_the_admin_log_in_is_throttled_like_the_sites(client, root):
    fail_logins("/admin/login/", ADMIN_EMAIL, address="203.0.113.9")
    refused = log_in(client, "/admin/login/", ADMIN_EMAIL, address="203.0.113.9")
    assert refused.status_code == 200
    assert "Too many failed log-ins" in refused.content.decode()
    assert not logged_in(client)
    # Another address without a device cookie meets the account's limit.
    assert (
        "Too many failed log-ins" in log_in(client, "/admin/login/", ADMIN_EMAIL).content.decode()
    )
    assert not logged_in(client)


def test_the_admin_log_in_counts_failures_from_one_address_across_accounts(client, root):
    for attempt in range(10):
        client.post(
            "/admin/login/",
            {"username": f"guess{attempt}@example.com", "password": "wrong"},
            REMOTE_ADDR="203.0.113.50",
        )
    refused = log_in(client, "/admin/login/", ADMIN_EMAIL, address="203.0.113.50")
    assert "Too many failed log-ins" in refused.content.decode()
    assert log_in(client, "/admin/login/", ADMIN_EMAIL, address="203.0.113.51").status_code == 302


@pytest.mark.parametrize("path", ["/accounts/login/", "/admin/login/"])
def test_a_strangers_failures_from_many_addresses_leave_the_owners_browser_able_to_log_in(
    root, path
):
    owner = Client()
    assert log_in(owner, path, ADMIN_EMAIL).status_code == 302
    assert owner.cookies[DEVICE_COOKIE].value
    owner.post(reverse("logout"))
    assert not logged_in(owner)

    fail_logins(path, ADMIN_EMAIL, times=30)
    stranger = Client()
    assert "Too many failed log-ins" in log_in(stranger, path, ADMIN_EMAIL).content.decode()
    # The owner's browser, from a new address (a phone on another network) still gets in.
    assert log_in(owner, path, ADMIN_EMAIL, address="192.0.2.200").status_code == 302
    assert logged_in(owner)


def test_a_device_cookie_is_locked_out_by_its_own_failures_and_no_one_elses(alice):
    laptop, phone = Client(), Client()
    for browser in (laptop, phone):
        assert log_in(browser, reverse("login"), alice.email).status_code == 302
        browser.post(reverse("logout"))
    for _ in range(10):
        laptop.post(reverse("login"), {"username": alice.email, "password": "wrong"})
    refused = log_in(laptop, reverse("login"), alice.email)
    assert "Too many failed log-ins" in refused.content.decode()
    assert log_in(phone, reverse("login"), alice.email).status_code == 302
    # Failures behind a device cookie count against the cookie, not the account.
    assert log_in(Client(), reverse("login"), alice.email).status_code == 302


def test_a_device_cookie_vouches_only_for_its_account_and_only_when_signed(client, alice, bob):
    assert log_in(client, reverse("login"), alice.email).status_code == 302
    client.post(reverse("logout"))
    fail_logins(reverse("login"), bob.email)
    # Alice's cookie does not make the browser trusted for Bob.
    assert "Too many failed log-ins" in log_in(client, reverse("login"), bob.email).content.decode()
    fail_logins(reverse("login"), alice.email)
    forged = client.cookies[DEVICE_COOKIE].value.replace(":", ":x", 1)
    client.cookies[DEVICE_COOKIE] = forged
    assert (
        "Too many failed log-ins" in log_in(client, reverse("login"), alice.email).content.decode()
    )


def test_the_device_cookie_is_http_only_lax_and_lasts_a_year(client, alice):
    log_in(client, reverse("login"), alice.email)
    cookie = client.cookies[DEVICE_COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Lax"
    assert cookie["max-age"] == 365 * 24 * 3600
    assert alice.email in signing.loads(cookie.value, salt="webapp.login.device")["email"]


def test_password_change(client, alice):
    client.force_login(alice)
    new = "another-long-passphrase-77"
    response = client.post(
        reverse("password_change"),
        {"old_password": PASSWORD, "new_password1": new, "new_password2": new},
    )
    assert response.status_code == 302
    alice.refresh_from_db()
    assert alice.check_password(new)


def test_password_reset_sends_a_working_link(client, alice):
    response = client.post(reverse("password_reset"), {"email": alice.email})
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    link = re.search(r"http://testserver(/accounts/reset/\S+/)", mail.outbox[0].body).group(1)
    form_page = client.get(link, follow=True)
    new = "a-fresh-long-passphrase-31"
    done = client.post(
        form_page.redirect_chain[-1][0], {"new_password1": new, "new_password2": new}
    )
    assert done.status_code == 302
    alice.refresh_from_db()
    assert alice.check_password(new)


def test_pages_for_anonymous_visitors(client, db):
    assert client.get(reverse("home")).status_code == 200
    assert client.get(reverse("signup")).status_code == 200
    assert client.get(reverse("login")).status_code == 200
    assert client.get(reverse("api_keys")).status_code == 302


def test_admin_lists_users_and_keys(client, db):
    admin = make_user("admin@example.com", is_staff=True, is_superuser=True)
    client.force_login(admin)
    assert client.get("/admin/webapp/user/").status_code == 200
    assert client.get("/admin/removal/apikey/").status_code == 200
