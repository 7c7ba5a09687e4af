from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from batches import webhooks
from removal import keys, tryouts
from removal.models import ApiKey
from webapp import accounts
from webapp.forms import ApiKeyForm, ChoosePasswordForm, SignupForm


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "webapp/home.html")


def signup(request: HttpRequest) -> HttpResponse:
    form = SignupForm(request.POST or None, request=request)
    if form.is_valid():
        accounts.request_signup(form.cleaned_data["email"], request.build_absolute_uri("/"))
        return redirect("signup_sent")
    return render(request, "registration/signup.html", {"form": form})


def signup_sent(request: HttpRequest) -> HttpResponse:
    return render(request, "registration/signup_sent.html")


def signup_confirm(request: HttpRequest, token: str) -> HttpResponse:
    email = accounts.confirmed_email(token)
    if email is None or accounts.has_account(email):
        state = "invalid" if email is None else "exists"
        return render(request, "registration/signup_confirm.html", {"state": state})
    form = ChoosePasswordForm(email, request.POST or None)
    if form.is_valid():
        try:
            user = accounts.create_account(email, form.cleaned_data["password1"])
        except accounts.AccountExistsError:
            return render(request, "registration/signup_confirm.html", {"state": "exists"})
        tryouts.adopt(request.session, user)
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect("home")
    context = {"state": "choose", "form": form, "email": email}
    return render(request, "registration/signup_confirm.html", context)


# The secret of a key created on the last POST, carried to the page the POST redirects to and
# removed from the session when that page shows it (a reload shows and creates nothing).
NEW_KEY_SESSION_KEY = "new_api_key"


@login_required
def api_keys(request: HttpRequest) -> HttpResponse:
    form = ApiKeyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        key, secret = keys.create_key(request.user, form.cleaned_data["name"])
        request.session[NEW_KEY_SESSION_KEY] = {"key_id": key.key_id, "secret": secret}
        return redirect("api_keys")
    new = request.session.pop(NEW_KEY_SESSION_KEY, None)
    new_key = new and request.user.api_keys.filter(key_id=new["key_id"]).first()
    context = {
        "form": form,
        "keys": request.user.api_keys.all(),
        "new_key": new_key,
        "new_secret": new["secret"] if new_key else None,
        "api_url": request.build_absolute_uri("/api/v2/remove-background"),
        "webhook_secret": webhooks.secret_for(request.user),
    }
    return render(request, "webapp/api_keys.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def revoke_api_key(request: HttpRequest, key_id: str) -> HttpResponse:
    """GET asks for confirmation; POST revokes."""
    key = get_object_or_404(ApiKey, key_id=key_id, user=request.user, revoked_at__isnull=True)
    if request.method == "POST":
        keys.revoke(key)
        messages.success(request, f"Key {key.name} ({key.key_id}) revoked: it no longer works.")
        return redirect("api_keys")
    return render(request, "webapp/api_key_revoke.html", {"key": key})
