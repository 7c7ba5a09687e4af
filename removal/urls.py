from django.urls import path

from removal import views

app_name = "removal"

# The website's pages and calls; the APIs' routes come from the registry (removal/api/formats.py).
urlpatterns = [
    path("remove/", views.upload_page, name="upload"),
    path("remove/uploads/", views.CreateUploadView.as_view(), name="create_upload"),
    path(
        "remove/uploads/<str:public_id>/render/",
        views.RenderUploadView.as_view(),
        name="render_upload",
    ),
    path(
        "remove/uploads/<str:public_id>/original/",
        views.upload_original,
        name="upload_original",
    ),
    path("try/", views.CreateTryoutView.as_view(), name="create_tryout"),
    path("try/<str:public_id>/render/", views.RenderTryoutView.as_view(), name="render_tryout"),
    path("staff/upstream/", views.upstream_status, name="upstream_status"),
]
