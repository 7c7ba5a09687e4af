from django import template
from django.template import Context

from removal import tryouts, uploads

register = template.Library()


@register.inclusion_tag("removal/_uploader.html", takes_context=True)
def uploader(context: Context) -> dict:
    """The drop zone, options, viewer and batch list: for a signed-in user (with the try-outs
    adopted at sign-up, shown once), or a visitor's try-out."""
    request = context["request"]
    if request.user.is_authenticated:
        state = uploads.uploader_state(request.user)
        adopted = tryouts.take_adopted(request.session)
    else:
        state = tryouts.uploader_state()
        adopted = []
    return {"uploader": state, "adopted": adopted, "csrf_token": context.get("csrf_token")}
