from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

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


@login_required
def api_keys(request: HttpRequest) -> HttpResponse:
    form = ApiKeyForm(request.POST or None)
    new_secret = None
    new_key = None
    if request.method == "POST" and form.is_valid():
        new_key, new_secret = keys.create_key(request.user, form.cleaned_data["name"])
        form = ApiKeyForm()
    context = {
        "form": form,
        "keys": request.user.api_keys.all(),
        "new_key": new_key,
        "new_secret": new_secret,
    }
    return render(request, "webapp/api_keys.html", context)


@login_required
@require_POST
def revoke_api_key(request: HttpRequest, key_id: str) -> HttpResponse:
    key = get_object_or_404(ApiKey, key_id=key_id, user=request.user)
    keys.revoke(key)
    messages.success(request, f"Key {key.key_id} revoked.")
    return redirect("api_keys")
