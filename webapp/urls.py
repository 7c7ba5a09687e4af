from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from removal.api import (
    formats,
    openapi,  # noqa: F401  (registers the authentication schemes)
)
from webapp import health, views
from webapp.forms import ThrottledLoginForm

urlpatterns = [
    path("", views.home, name="home"),
    path("signup/", views.signup, name="signup"),
    path("signup/sent/", views.signup_sent, name="signup_sent"),
    path("signup/confirm/<str:token>/", views.signup_confirm, name="signup_confirm"),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(authentication_form=ThrottledLoginForm),
        name="login",
    ),
    path("accounts/", include("django.contrib.auth.urls")),
    path("account/", views.dashboard, name="dashboard"),
    path("account/history/", views.history, name="history"),
    path(
        "account/history/<str:public_id>/thumbnail/",
        views.upload_thumbnail,
        name="upload_thumbnail",
    ),
    path(
        "account/history/<str:public_id>/download/", views.download_upload, name="download_upload"
    ),
    path("account/history/<str:public_id>/delete/", views.delete_upload, name="delete_upload"),
    path("account/delete/", views.delete_account, name="delete_account"),
    path("privacy/", views.privacy, name="privacy"),
    path("docs/api/", views.api_page, name="api_page"),
    path("docs/migrate/", views.migration, name="migration"),
    path("account/keys/", views.api_keys, name="api_keys"),
    path("account/keys/<str:key_id>/revoke/", views.revoke_api_key, name="revoke_api_key"),
    path("admin/", admin.site.urls),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api_schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api_schema"), name="api_docs"),
    path("", include(formats.routes())),
    path("", include("removal.urls")),
    path("", include("billing.urls")),
    # Last: any other path under a wire format's prefix is its JSON 404, with DEBUG on or off.
    path("", include(formats.catch_alls())),
]

# Under a wire format's prefix every error is that API's error JSON, never an HTML page.
handler400 = "removal.api.handlers.bad_request"
handler403 = "removal.api.handlers.permission_denied"
handler404 = "removal.api.handlers.page_not_found"
handler500 = "removal.api.handlers.server_error"
