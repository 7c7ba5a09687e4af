from django.urls import re_path

from removal.api import pixian

app_name = "removal"

urlpatterns = [
    # Pixian's clients post without a trailing slash; one more is tolerated.
    re_path(
        r"^api/v2/remove-background/?$",
        pixian.RemoveBackgroundView.as_view(),
        name="pixian_remove_background",
    ),
]
