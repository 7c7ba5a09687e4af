from django.contrib import admin
from django.db.models import Model
from django.http import HttpRequest

from removal.models import ApiKey, CallRecord


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["key_id", "name", "user", "created_at", "last_used_at", "revoked_at"]
    search_fields = ["key_id", "user__email", "name"]
    readonly_fields = ["key_id", "secret_hmac", "created_at", "last_used_at"]
    list_filter = ["revoked_at"]


@admin.register(CallRecord)
class CallRecordAdmin(admin.ModelAdmin):
    """Read-only: what each account's calls asked, cost and answered."""

    list_display = ["created_at", "user", "channel", "endpoint", "status", "error_code", "credits"]
    list_filter = ["channel", "wire_format", "status", "test"]
    search_fields = ["user__email", "request_id"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False
