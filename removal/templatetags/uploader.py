from django import template
from django.template import Context

from removal import tryouts, upload_history, uploads

register = template.Library()


@register.inclusion_tag("removal/_uploader.html", takes_context=True)
def uploader(context: Context) -> dict:
    """The drop zone, options, viewer and batch list: for a signed-in user (with the try-outs
    adopted at sign-up, shown once, and the stored upload `?upload=` names, from the
    history), or a visitor's try-out."""
    request = context["request"]
    if request.user.is_authenticated:
        state = uploads.uploader_state(request.user)
        adopted: list = tryouts.take_adopted(request.session)
        stored = upload_history.kept_upload(request.user, request.GET.get("upload", ""))
        if stored is not None:
            adopted.append({"id": stored.public_id, "name": stored.filename or "Stored upload"})
    else:
        state = tryouts.uploader_state()
        adopted = []
    return {"uploader": state, "adopted": adopted, "csrf_token": context.get("csrf_token")}
