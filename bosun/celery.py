"""The Celery app shared by the worker, beat and every process that enqueues work."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bosun.settings")

# DjangoTask adds delay_on_commit()/apply_async_on_commit(): enqueue only after the rows a
# task needs are committed (DESIGN.md §2).
app = Celery("bosun", task_cls="celery.contrib.django.task:DjangoTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
