"""Bosun: a self-hosted operations hub for hybrid fleets."""

from bosun.celery import app as celery_app

__all__ = ["celery_app"]
__version__ = "0.1.0"
