from django.apps import AppConfig


class RemovalConfig(AppConfig):
    name = "removal"
    verbose_name = "Background removal"

    def ready(self) -> None:
        # The project's wire formats, registered in this one place; another app registers its
        # own from its ready() the same way (removal/api/formats.py).
        from removal.api import formats
        from removal.api.baidu.format import OAUTH as BAIDU_OAUTH
        from removal.api.baidu.format import SEGMENT as BAIDU_SEGMENT
        from removal.api.pixian.format import FORMAT as PIXIAN
        from removal.api.removebg.format import FORMAT as REMOVEBG

        formats.register(PIXIAN)
        formats.register(REMOVEBG)
        formats.register(BAIDU_SEGMENT)
        formats.register(BAIDU_OAUTH)
