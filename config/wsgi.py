import os

from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.urls import get_resolver

from config.heap import freeze_startup_heap
from config.request_environ import without_process_environment

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = without_process_environment(get_wsgi_application())
get_resolver().url_patterns  # noqa: B018 - load every view and API schema now, before the heap is frozen
freeze_startup_heap()
# Django looks at every alias's connection when a request starts and again when it ends. A web thread
# does nothing with its connections between two requests, so the look at the end of one request (errors,
# age) is the look at the start of the next; the second walk over the eight aliases was 3-4 % of the web
# worker's CPU. Django's test client does the same while it serves a request.
signals.request_started.disconnect(close_old_connections)
