import re

import pytest
from django.core import mail, signing
from django.test import Client
from django.urls import reverse

from tests.conftest import PASSWORD, make_user
from tests.support_gunicorn import SERVED_EMAIL, post_form
from webapp.login import COOKIE_NAME as DEVICE_COOKIE
from webapp.models import User

# --- Sign-up by e-mail confirmation (webapp/accounts.py) -------------------------------------


def sign_up(client: Client, email: str, **extra):
    return client.post(reverse("signup"), {"email": email}, **extra)


def link_in(message) -> str:
    return re.search(r"http://testserver(/\S+/)", message.body).group(1)


@pytest.mark.django_db
def test_signup_mails_a_link_to_choose_a_password_which_creates_the_account(client):
    response = sign_up(client, "New@Example.com")
    assert response.status_code == 302 and response["Location"] == reverse("signup_sent")
    assert not User.objects.exists()
    [message] = mail.outbox
    assert message.to == ["new@example.com"]
    link = link_in(message)
    assert link.startswith("/signup/confirm/")
    page = client.get(link)
    assert "new@example.com" in page.content.decode()
    done = client.post(link, {"password1": PASSWORD, "password2": PASSWORD})
    assert done.status_code == 302 and done["Location"] == reverse("home")
    user = User.objects.get()
    assert user.email == "new@example.com" and user.check_password(PASSWORD)
    assert client.get(reverse("api_keys")).status_code == 200
    # Spent: the link now only says that the address has an account.
    again = client.post(link, {"password1": "x" + PASSWORD, "password2": "x" + PASSWORD})
    assert "This address has an account already" in again.content.decode()
    assert User.objects.get().check_password(PASSWORD)


def test_signup_answers_the_same_for_known_and_unknown_addresses(alice):
    known, unknown = Client(), Client()
    answers = [sign_up(known, "ALICE@example.com"), sign_up(unknown, "nobody@example.com")]
    assert [a.status_code for a in answers] == [302, 302]
    assert answers[0]["Location"] == answers[1]["Location"]
    pages = [c.get(a["Location"]).content for c, a in zip((known, unknown), answers, strict=True)]
    assert pages[0] == pages[1]
    assert [m.to for m in mail.outbox] == [["alice@example.com"], ["nobody@example.com"]]
    assert mail.outbox[0].subject == mail.outbox[1].subject
    # The owner learns that the address has an account, and where to log in or reset.
    note = mail.outbox[0].body
    assert "has an account already" in note and "/signup/confirm/" not in note
    assert "http://testserver/accounts/login/" in note
    assert "http://testserver/accounts/password_reset/" in note
    assert User.objects.count() == 1


def test_a_signup_link_for_an_address_that_got_an_account_meanwhile_creates_nothing(client, db):
    sign_up(client, "carol@example.com")
    link = link_in(mail.outbox[0])
    make_user("carol@example.com")
    response = client.post(link, {"password1": "x" + PASSWORD, "password2": "x" + PASSWORD})
    assert "This address has an account already" in response.content.decode()
    assert not User.objects.get().check_password("x" + PASSWORD)
    assert "_auth_user_id" not in client.session


def test_a_forged_or_expired_signup_link_does_not_work(client, db, settings):
    sign_up(client, "carol@example.com")
    link = link_in(mail.outbox[0])
    forged = link.replace("/signup/confirm/", "/signup/confirm/x")
    assert "This link does not work" in client.get(forged).content.decode()
    settings.PASSWORD_RESET_TIMEOUT = -1
    response = client.post(link, {"password1": PASSWORD, "password2": PASSWORD})
    assert "This link does not work" in response.content.decode()
    assert not User.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("password", ["123", "password", "12345678901", "newperson@example.com"])
def test_signup_refuses_weak_passwords(client, password):
    sign_up(client, "newperson@example.com")
    link = link_in(mail.outbox[0])
    response = client.post(link, {"password1": password, "password2": password})
    assert response.status_code == 200
    assert response.context["form"].errors["password2"]
    assert not User.objects.exists()


def test_signup_mails_to_one_address_are_capped_without_a_different_answer(client, alice):
    answers = {sign_up(Client(), alice.email)["Location"] for _ in range(5)}
    assert answers == {reverse("signup_sent")}
    assert len(mail.outbox) == 3


@pytest.mark.django_db
def test_signup_is_limited_per_client_address(client):
    for n in range(20):
        assert sign_up(client, f"p{n}@example.com", REMOTE_ADDR="203.0.113.5").status_code == 302
    refused = sign_up(client, "p21@example.com", REMOTE_ADDR="203.0.113.5")
    assert "Too many sign-ups" in refused.content.decode()
    assert sign_up(client, "p21@example.com", REMOTE_ADDR="203.0.113.6").status_code == 302


def test_password_reset_answers_the_same_for_known_and_unknown_addresses(alice):
    known, unknown = Client(), Client()
    answers = [
        known.post(reverse("password_reset"), {"email": alice.email}),
        unknown.post(reverse("password_reset"), {"email": "nobody@example.com"}),
    ]
    assert [a.status_code for a in answers] == [302, 302]
    assert answers[0]["Location"] == answers[1]["Location"]
    pages = [c.get(a["Location"]).content for c, a in zip((known, unknown), answers, strict=True)]
    assert pages[0] == pages[1]
    assert [m.to for m in mail.outbox] == [[alice.email]]


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


def test_without_mail_configured_start_up_warns_and_no_link_reaches_the_log(served):
    # A real gunicorn with debug off and no DJANGO_EMAIL_BACKEND (tests/support_gunicorn.py).
    assert post_form(served, "/accounts/password_reset/", {"email": SERVED_EMAIL}).status == 302
    assert post_form(served, "/signup/", {"email": "dave@example.com"}).status == 302
    log = served.log_once_it_shows('"POST /signup/ HTTP/1.1" 302')
    assert "WARNING webapp.checks No e-mail backend is configured" in log
    assert '"POST /accounts/password_reset/ HTTP/1.1" 302' in log
    assert '"POST /signup/ HTTP/1.1" 302' in log
    assert "/accounts/reset/" not in log and "/signup/confirm/" not in log
