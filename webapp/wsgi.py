import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
django_application = get_wsgi_application()

from webapp.bodies import DechunkedBodyApp  # noqa: E402  (needs the settings loaded above)
from webapp.checks import refuse_local_state  # noqa: E402

# gunicorn runs no system checks: a server declared one of several hosts with local state
# refuses to boot here (webapp/checks.py).
refuse_local_state()
application = DechunkedBodyApp(django_application)
