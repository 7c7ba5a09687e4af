import re

import pytest
from django.core import mail
from django.urls import reverse

from tests.conftest import PASSWORD, make_user
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
