from pathlib import PurePath

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from batches import webhooks
from billing import ledger, pricing
from billing.formatting import format_credits
from removal import errors, idempotency, keys, limits, tryouts, upload_history, uploads, usage
from removal.errors import RemovalError
from removal.models import ApiKey, Upload
from webapp import accounts, charts, erasure
from webapp.forms import ApiKeyForm, ChoosePasswordForm, DeleteAccountForm, SignupForm

CALLS_PER_PAGE = 25


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


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    summary = ledger.account_summary(request.user)
    price = pricing.production_price()
    daily = usage.daily_usage(request.user)
    calls_chart = charts.stacked_bars(
        "Calls per day",
        daily.days,
        [charts.Stack(s.key, s.label, s.calls) for s in daily.series],
    )
    credits_chart = charts.stacked_bars(
        "Credits per day",
        daily.days,
        [charts.Stack(s.key, s.label, s.credits) for s in daily.series],
        fmt=format_credits,
    )
    context = {
        "summary": summary,
        "price": price,
        "notice": usage.balance_notice(summary, price),
        "charts": [calls_chart, credits_chart],
        "usage": daily.as_data(),
        "failures": usage.recent_failures(request.user),
        "uploads_kept": upload_history.kept_uploads(request.user).count(),
    }
    return render(request, "webapp/dashboard.html", context)


@login_required
def history(request: HttpRequest) -> HttpResponse:
    page = Paginator(usage.api_calls(request.user), CALLS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    context = {
        "uploads": upload_history.kept_uploads(request.user),
        "page": page,
        "upload_hours": settings.CUTOUT_UPLOAD_RETENTION_HOURS,
        "record_days": settings.CUTOUT_CALL_RECORD_RETENTION_DAYS,
    }
    return render(request, "webapp/history.html", context)


def _own_upload(request: HttpRequest, public_id: str) -> Upload:
    try:
        return uploads.get_upload(request.user, public_id)
    except RemovalError as exc:
        raise Http404(exc.message) from None


@login_required
@require_GET
def upload_thumbnail(request: HttpRequest, public_id: str) -> HttpResponse:
    upload = _own_upload(request, public_id)
    response = FileResponse(upload_history.thumbnail(upload).open("rb"), content_type="image/jpeg")
    response["Cache-Control"] = "private, max-age=3600"
    return response


@login_required
@require_GET
def download_upload(request: HttpRequest, public_id: str) -> HttpResponse:
    """The upload rendered again with its last options, as a file (free)."""
    upload = _own_upload(request, public_id)
    try:
        with limits.limited(f"user:{request.user.pk}"):
            rendering = upload_history.redownload(upload)
    except RemovalError as exc:
        messages.error(request, f"Could not render {upload.filename or 'the image'}: {exc}")
        return redirect("history")
    result = rendering.result
    extension = {"image/jpeg": "jpg"}.get(result.content_type, "png")
    stem = PurePath(upload.filename).stem[:80] or "image"
    response = HttpResponse(result.body, content_type=result.content_type)
    response["Content-Disposition"] = f'attachment; filename="{_safe(stem)}-cutout.{extension}"'
    response["Cache-Control"] = "private, no-store"
    return response


def _safe(name: str) -> str:
    return "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "_" for c in name)


@login_required
@require_POST
def delete_upload(request: HttpRequest, public_id: str) -> HttpResponse:
    upload = _own_upload(request, public_id)
    uploads.delete_upload(upload)
    messages.success(
        request,
        f"Deleted {upload.filename or 'the upload'}: its original, cut-out mask and preview "
        "are gone from storage.",
    )
    return redirect("history")


@login_required
@require_http_methods(["GET", "POST"])
def delete_account(request: HttpRequest) -> HttpResponse:
    """GET asks (with the password); POST deletes, logs out and says what happened."""
    form = DeleteAccountForm(request.user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            erasure.delete_account(request.user)
        except erasure.AccountBusyError as exc:
            messages.error(request, str(exc))
            return redirect("delete_account")
        logout(request)
        return render(request, "webapp/account_deleted.html")
    context = {"form": form, "summary": ledger.account_summary(request.user)}
    return render(request, "webapp/account_delete.html", context)


def privacy(request: HttpRequest) -> HttpResponse:
    context = {
        "upload_hours": settings.CUTOUT_UPLOAD_RETENTION_HOURS,
        "tryout_minutes": int(uploads.TRYOUT_LIFETIME.total_seconds() // 60),
        "record_days": settings.CUTOUT_CALL_RECORD_RETENTION_DAYS,
        "improve_days": settings.CUTOUT_IMPROVE_RETENTION_DAYS,
        "batch_hours": settings.CUTOUT_BATCH_RETENTION_HOURS,
        "idempotency_hours": int(idempotency.WINDOW.total_seconds() // 3600),
    }
    return render(request, "webapp/privacy.html", context)


def api_page(request: HttpRequest) -> HttpResponse:
    """The quick start, with the signed-in customer's own API id (never a secret)."""
    key = None
    if request.user.is_authenticated:
        key = request.user.api_keys.filter(revoked_at__isnull=True).first()
    context = {
        "api_id": key.key_id if key else "YOUR_API_ID",
        "has_key": key is not None,
        "api_url": request.build_absolute_uri("/api/v2/remove-background"),
        "errors": sorted(errors.ERRORS.items()),
    }
    return render(request, "webapp/api.html", context)


def migration(request: HttpRequest) -> HttpResponse:
    context = {"root": request.build_absolute_uri("/").rstrip("/")}
    return render(request, "webapp/migration.html", context)
