from django.apps import AppConfig


class RemovalConfig(AppConfig):
    name = "removal"
    verbose_name = "Background removal"
