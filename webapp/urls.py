from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from webapp import views
from webapp.forms import ThrottledLoginForm

urlpatterns = [
    path("", views.home, name="home"),
    path("signup/", views.signup, name="signup"),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(authentication_form=ThrottledLoginForm),
        name="login",
    ),
    path("accounts/", include("django.contrib.auth.urls")),
    path("account/keys/", views.api_keys, name="api_keys"),
    path("account/keys/<str:key_id>/revoke/", views.revoke_api_key, name="revoke_api_key"),
    path("admin/", admin.site.urls),
    path("", include("removal.urls")),
    path("", include("billing.urls")),
]
