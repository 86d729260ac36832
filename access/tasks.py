"""Celery tasks of the access app: thin wrappers that call services."""

from celery import shared_task

from access import kms, reencrypt


@shared_task(name=reencrypt.REENCRYPT_TASK)
def reencrypt_after_rotation(*, key_id: str) -> int:
    return reencrypt.reencrypt_key(key=kms.key_resolve(key_id))
