from django.urls import path, re_path

from removal import views
from removal.api import pixian

app_name = "removal"

urlpatterns = [
    # Pixian's clients post without a trailing slash; one more is tolerated.
    re_path(
        r"^api/v2/remove-background/?$",
        pixian.RemoveBackgroundView.as_view(),
        name="pixian_remove_background",
    ),
    path("remove/", views.upload_page, name="upload"),
    path("remove/uploads/", views.CreateUploadView.as_view(), name="create_upload"),
    path(
        "remove/uploads/<str:public_id>/render/",
        views.RenderUploadView.as_view(),
        name="render_upload",
    ),
]
