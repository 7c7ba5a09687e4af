from django.apps import AppConfig


class BatchesConfig(AppConfig):
    name = "batches"
    verbose_name = "Batches"

    def ready(self) -> None:
        from batches.format import FORMAT
        from removal.api import formats

        formats.register(FORMAT)
