from django.apps import AppConfig


class WebappConfig(AppConfig):
    name = "webapp"
    verbose_name = "Accounts"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        from webapp import checks, login

        user_logged_in.connect(login.remember_device, dispatch_uid="webapp.remember_device")
        checks.warn_at_start()
