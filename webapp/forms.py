from django import forms
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm, BaseUserCreationForm

from removal import limits
from webapp.models import User


class SignupForm(BaseUserCreationForm):
    class Meta:
        model = User
        fields = ("email",)

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].strip().lower()
        if User.objects.filter(email__iexact=email).exists():
            raise forms.ValidationError("An account with this e-mail address already exists.")
        return email


class ThrottledLoginForm(AuthenticationForm):
    """Log-in that refuses after too many failures for the account or from the address."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "throttled": "Too many failed log-ins. Wait a few minutes and try again.",
    }

    def _keys(self) -> list[str]:
        email = (self.data.get("username") or "").strip().lower()
        address = limits.client_address(self.request.META) if self.request else "unknown"
        return [f"login:account:{email}", f"login:address:{address}"]

    def clean(self):
        window = settings.CUTOUT_LOGIN_FAILURE_WINDOW_S
        limit = settings.CUTOUT_LOGIN_FAILURE_LIMIT
        if any(limits.count(key, window) >= limit for key in self._keys()):
            raise forms.ValidationError(self.error_messages["throttled"], code="throttled")
        try:
            return super().clean()
        except forms.ValidationError:
            for key in self._keys():
                limits.hit(key, window)
            raise


class ApiKeyForm(forms.Form):
    name = forms.CharField(
        max_length=100, initial="default", help_text="A label to tell keys apart."
    )
