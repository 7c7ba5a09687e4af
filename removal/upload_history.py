"""The history's side of the website's uploads (removal/uploads.py): the uploads still kept,
downloading one again with its last options, and its thumbnail."""

import dataclasses

from django.contrib.auth.base_user import AbstractBaseUser
from django.core.files.base import ContentFile
from django.db.models import QuerySet
from django.db.models.fields.files import FieldFile
from django.utils import timezone

from removal import previews
from removal.api.pixian.options import parse_pixian_options
from removal.errors import RemovalError
from removal.models import Upload
from removal.uploads import Rendering, get_upload, original_file, render_upload


def kept_upload(user: AbstractBaseUser, public_id: str) -> Upload | None:
    """`user`'s upload with this id while it is kept, else None."""
    try:
        return get_upload(user, public_id) if public_id else None
    except RemovalError:
        return None


def kept_uploads(user: AbstractBaseUser) -> QuerySet[Upload]:
    """`user`'s uploads still kept, newest first (the history)."""
    return Upload.objects.filter(user=user, expires_at__gt=timezone.now()).order_by(
        "-created_at", "-pk"
    )


def redownload(upload: Upload) -> Rendering:
    """The upload rendered again with the options of its last render: free (an upload never
    paid for comes out in test mode, as it last did)."""
    options = parse_pixian_options(upload.options)
    if not upload.paid:
        options = dataclasses.replace(options, test=True)
    return render_upload(upload, options)


def thumbnail(upload: Upload) -> FieldFile:
    """The history's small JPEG of the upload's original: made and stored on its first
    showing, so the original is decoded once. Of two first showings at once, one stores its
    file and the other deletes its own."""
    if not upload.thumbnail:
        with original_file(upload).open("rb") as f:
            data = previews.thumbnail(f.read())
        upload.thumbnail.save("thumbnail.jpg", ContentFile(data), save=False)
        rows = Upload.objects.filter(pk=upload.pk, thumbnail="")
        if not rows.update(thumbnail=upload.thumbnail.name):
            upload.thumbnail.storage.delete(upload.thumbnail.name)
            upload.refresh_from_db(fields=["thumbnail"])
    return upload.thumbnail
