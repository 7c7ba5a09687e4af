from django.contrib import admin
from django.db.models import Model
from django.http import HttpRequest

from removal.models import ApiKey, CallRecord, Improvement


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


@admin.register(Improvement)
class ImprovementAdmin(admin.ModelAdmin):
    """Images sent to remove.bg's /v1.0/improve, kept CUTOUT_IMPROVE_RETENTION_DAYS."""

    list_display = ["created_at", "user", "filename", "tag", "size_bytes", "image"]
    search_fields = ["user__email", "filename", "tag", "public_id"]
    readonly_fields = ["public_id", "user", "image", "filename", "tag", "size_bytes", "created_at"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
