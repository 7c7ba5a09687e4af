from typing import Any

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm, SetPasswordMixin
from django.http import HttpRequest

from removal import limits
from webapp import accounts, login
from webapp.models import User


class SignupForm(forms.Form):
    """Sign-up's first step: an address, which is mailed the next one (webapp/accounts.py)."""

    email = forms.EmailField(label="E-mail address", max_length=254)

    def __init__(self, *args: Any, request: HttpRequest | None = None, **kwargs: Any) -> None:
        self.request = request
        super().__init__(*args, **kwargs)

    def clean_email(self) -> str:
        return login.normalise(self.cleaned_data["email"])

    def clean(self) -> dict:
        address = (
            limits.client_block(limits.client_address(self.request.META))
            if self.request
            else "unknown"
        )
        if accounts.signup_limited(address):
            raise forms.ValidationError(
                "Too many sign-ups from your network. Wait an hour and try again.",
                code="throttled",
            )
        return super().clean()


class ChoosePasswordForm(SetPasswordMixin, forms.Form):
    """Sign-up's second step, from the mailed link: the password for the confirmed address."""

    password1, password2 = SetPasswordMixin.create_password_fields()

    def __init__(self, email: str, *args: Any, **kwargs: Any) -> None:
        # Unsaved: only for the validators that compare the password with the address.
        self.user = User(email=email)
        super().__init__(*args, **kwargs)

    def clean(self) -> dict:
        self.validate_passwords()
        self.validate_password_for_user(self.user)
        return super().clean()


class ThrottledLoginMixin:
    """Refuses a log-in while its counters are over the limit (webapp/login.py) and charges
    each failure to them."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "throttled": "Too many failed log-ins. Wait a few minutes and try again.",
    }

    def clean(self) -> dict:
        keys = login.attempt_keys(self.request, str(self.data.get("username") or ""))
        if login.is_locked_out(keys):
            raise forms.ValidationError(self.error_messages["throttled"], code="throttled")
        try:
            return super().clean()
        except forms.ValidationError:
            login.record_failure(keys)
            raise


class ThrottledLoginForm(ThrottledLoginMixin, AuthenticationForm):
    pass


class ThrottledAdminLoginForm(ThrottledLoginMixin, AdminAuthenticationForm):
    error_messages = {
        **AdminAuthenticationForm.error_messages,
        "throttled": ThrottledLoginMixin.error_messages["throttled"],
    }


class ApiKeyForm(forms.Form):
    name = forms.CharField(
        max_length=100, initial="default", help_text="A label to tell keys apart."
    )


class DeleteAccountForm(forms.Form):
    """Deleting an account asks for its password: a left-open session alone cannot do it."""

    password = forms.CharField(
        label="Your password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )

    def __init__(self, user: User, *args: Any, **kwargs: Any) -> None:
        self.user = user
        super().__init__(*args, **kwargs)

    def clean_password(self) -> str:
        password = self.cleaned_data["password"]
        if not self.user.check_password(password):
            raise forms.ValidationError("That is not your password.", code="wrong_password")
        return password
