import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

from config.heap import freeze_startup_heap

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()
get_resolver().url_patterns  # noqa: B018 - load every view and API schema now, before the heap is frozen
freeze_startup_heap()
