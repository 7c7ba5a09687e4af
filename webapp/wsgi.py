import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
django_application = get_wsgi_application()

from webapp.bodies import DechunkedBodyApp  # noqa: E402  (needs the settings loaded above)

application = DechunkedBodyApp(django_application)
