"""WSGI entry point for the `web` role (gunicorn): plain HTTP, no websockets."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bosun.settings")

application = get_wsgi_application()
