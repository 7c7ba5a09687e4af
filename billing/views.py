import csv
import logging
from collections.abc import Iterator

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from billing import ledger, payments
from billing.formatting import format_credits, format_time
from billing.models import CreditPack

logger = logging.getLogger(__name__)

ENTRIES_PER_PAGE = 25


def pricing(request: HttpRequest) -> HttpResponse:
    context = {
        "packs": CreditPack.objects.filter(active=True),
        "payments_enabled": payments.is_configured(),
        "cancelled": request.GET.get("checkout") == "cancelled",
    }
    return render(request, "billing/pricing.html", context)


@login_required
@require_POST
def buy(request: HttpRequest, pack_id: int) -> HttpResponse:
    pack = get_object_or_404(CreditPack, pk=pack_id, active=True)
    success_url = request.build_absolute_uri(reverse("billing:credits")) + "?checkout=success"
    cancel_url = request.build_absolute_uri(reverse("billing:pricing")) + "?checkout=cancelled"
    try:
        url = payments.start_checkout(
            request.user, pack, success_url=success_url, cancel_url=cancel_url
        )
    except payments.PaymentsNotConfiguredError:
        messages.error(request, "Payments are not configured on this server.")
        return redirect("billing:pricing")
    except payments.CheckoutError as exc:
        messages.error(request, str(exc))
        return redirect("billing:pricing")
    return redirect(url)


@login_required
def credits(request: HttpRequest) -> HttpResponse:
    page = Paginator(ledger.entries(request.user), ENTRIES_PER_PAGE).get_page(
        request.GET.get("page")
    )
    context = {
        "summary": ledger.account_summary(request.user),
        "page": page,
        "paid": request.GET.get("checkout") == "success",
    }
    return render(request, "billing/credits.html", context)


class _Echo:
    def write(self, value: str) -> str:
        return value


def _cell(text: str) -> str:
    # Spreadsheets run cells starting with these as formulas (CSV injection).
    return "'" + text if text[:1] in {"=", "+", "-", "@", "\t", "\r"} else text


@login_required
def credits_csv(request: HttpRequest) -> StreamingHttpResponse:
    writer = csv.writer(_Echo())

    def rows() -> Iterator[str]:
        yield writer.writerow(
            ["time", "kind", "amount", "balance_after", "uncollected", "pack", "reference", "cause"]
        )
        for entry in ledger.entries(request.user).iterator():
            yield writer.writerow(
                [
                    format_time(entry.created_at),
                    entry.kind,
                    format_credits(entry.amount),
                    format_credits(entry.balance_after),
                    format_credits(entry.uncollected),
                    _cell(entry.pack.name if entry.pack else ""),
                    _cell(entry.reference),
                    _cell(entry.cause),
                ]
            )

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="cutout-credits.csv"'
    return response


@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest) -> JsonResponse:
    try:
        outcome = payments.handle_webhook(request.body, request.headers.get("Stripe-Signature"))
    except payments.WebhookError as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    except Exception:
        # Boundary: Stripe retries anything but 2xx; a 503 says "later", never a crash page.
        logger.exception("Stripe webhook failed")
        return JsonResponse({"error": "temporarily unable to process; retry"}, status=503)
    return JsonResponse({"received": True, "outcome": outcome})
