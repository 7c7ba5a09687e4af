"""Staff's view of the queue: batches and their items, each worker's last heartbeat, and the
queue depth (items waiting), never on a public endpoint."""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.utils import timezone

from batches.models import Batch, BatchItem, WebhookDelivery, WorkerHeartbeat


class ItemInline(admin.TabularInline):
    model = BatchItem
    extra = 0
    can_delete = False
    fields = ["number", "state", "attempts", "failures", "worker", "lease_until", "error_code"]
    readonly_fields = fields


@admin.register(Batch)
class BatchAdmin(admin.ModelAdmin):
    list_display = ["id", "user", "state", "test", "created_at", "finished_at"]
    list_filter = ["state", "test"]
    readonly_fields = ["hold", "status_url", "started_at", "finished_at"]
    inlines = [ItemInline]


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(admin.ModelAdmin):
    list_display = ["worker", "beat_at", "item"]
    readonly_fields = ["worker", "beat_at", "item"]

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponseBase:
        waiting = BatchItem.objects.filter(
            state=BatchItem.State.QUEUED, batch__state=Batch.State.RUNNING
        )
        ready = waiting.filter(next_attempt_at__lte=timezone.now()).count()
        running = BatchItem.objects.filter(state=BatchItem.State.RUNNING).count()
        self.message_user(
            request,
            f"Queue depth: {ready} items ready, {waiting.count() - ready} waiting for a retry, "
            f"{running} running.",
        )
        return super().changelist_view(request, extra_context)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ["batch", "event", "attempt", "status", "delivered", "created_at"]
    readonly_fields = ["batch", "event", "message_id", "attempt", "status", "error", "delivered"]
