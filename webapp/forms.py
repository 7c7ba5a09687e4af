from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm, BaseUserCreationForm

from webapp import login
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


class ThrottledLoginMixin:
    """Refuses a log-in while its counters are over the limit (webapp/login.py) and charges
    each failure to them."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "throttled": "Too many failed log-ins. Wait a few minutes and try again.",
    }

    def clean(self):
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
