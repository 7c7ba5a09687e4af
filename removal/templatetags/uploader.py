from django import template
from django.template import Context

from removal import uploads

register = template.Library()


@register.inclusion_tag("removal/_uploader.html", takes_context=True)
def uploader(context: Context) -> dict:
    """The drop zone, options, viewer and batch list, for the signed-in user."""
    return {
        "uploader": uploads.uploader_state(context["request"].user),
        "csrf_token": context.get("csrf_token"),
    }
