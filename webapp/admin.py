from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from webapp.forms import ThrottledAdminLoginForm
from webapp.models import User

# The admin's log-in is throttled like the site's (webapp/login.py).
admin.site.login_form = ThrottledAdminLoginForm


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ["email"]
    list_display = ["email", "is_staff", "is_active", "date_joined"]
    search_fields = ["email"]
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        ("Personal info", {"fields": ["first_name", "last_name"]}),
        (
            "Permissions",
            {"fields": ["is_active", "is_staff", "is_superuser", "groups", "user_permissions"]},
        ),
        ("Dates", {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [(None, {"classes": ["wide"], "fields": ["email", "password1", "password2"]})]
