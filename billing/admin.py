from django.contrib import admin
from django.db.models import Model
from django.http import HttpRequest

from billing.models import (
    CreditAccount,
    CreditPack,
    LedgerEntry,
    Purchase,
    Reservation,
    StripeEvent,
)


@admin.register(CreditPack)
class CreditPackAdmin(admin.ModelAdmin):
    list_display = ["name", "credits", "price_cents", "currency", "validity_days", "active"]
    list_editable = ["active"]


class ReadOnlyAdmin(admin.ModelAdmin):
    """Credits move only through billing.ledger (grant_credits for operators): the admin
    shows the books but cannot edit them."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


@admin.register(CreditAccount)
class CreditAccountAdmin(ReadOnlyAdmin):
    list_display = ["user", "balance", "held", "pack", "use_before", "updated_at"]
    search_fields = ["user__email"]
    list_select_related = ["user", "pack"]


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "account", "kind", "amount", "balance_after", "uncollected"]
    list_filter = ["kind"]
    search_fields = ["account__user__email", "reference", "cause"]
    list_select_related = ["account__user"]
    date_hierarchy = "created_at"


@admin.register(Reservation)
class ReservationAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "account", "amount", "status", "reference"]
    list_filter = ["status"]
    search_fields = ["account__user__email", "reference"]
    list_select_related = ["account__user"]


@admin.register(Purchase)
class PurchaseAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "account", "pack", "credits", "amount_cents", "currency"]
    search_fields = ["account__user__email", "session_id", "payment_intent", "event_id"]
    list_select_related = ["account__user", "pack"]


@admin.register(StripeEvent)
class StripeEventAdmin(ReadOnlyAdmin):
    list_display = ["received_at", "event_id", "type", "rejected", "outcome"]
    list_filter = ["rejected", "type"]
    search_fields = ["event_id", "outcome"]
