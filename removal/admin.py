from django.contrib import admin

from removal.models import ApiKey


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["key_id", "name", "user", "created_at", "last_used_at", "revoked_at"]
    search_fields = ["key_id", "user__email", "name"]
    readonly_fields = ["key_id", "secret_hmac", "created_at", "last_used_at"]
    list_filter = ["revoked_at"]
