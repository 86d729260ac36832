"""Access keys on the REST API: `Authorization: Bearer <AccessKeyId>:<SecretAccessKey>`.

A bearer pair over TLS is what most API clients can send without a signing library; the AWS
endpoint (a later issue) takes the same keys as SigV4 signatures instead. Failures are
audited and answer one message that does not say which half was wrong.
"""

from __future__ import annotations

import hmac
from typing import Any

from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed

from access import services
from access.models import AccessKey
from audit.services import audit_record

INVALID = "The access key id or secret is wrong, or the key is inactive."


class AccessKeyAuthentication(BaseAuthentication):
    keyword = b"bearer"

    def authenticate(self, request: Any) -> tuple[Any, AccessKey] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword:
            return None
        if len(parts) != 2 or b":" not in parts[1]:
            raise AuthenticationFailed("Send Authorization: Bearer <AccessKeyId>:<SecretAccessKey>")
        key_id, _, secret = parts[1].decode("utf-8", "replace").partition(":")
        access_key = AccessKey.objects.select_related("user").filter(access_key_id=key_id).first()
        if access_key is None or not self._valid(access_key, secret):
            self._audit_failure(request, key_id)
            raise AuthenticationFailed(INVALID)
        source_ip = request.META.get("REMOTE_ADDR", "")
        services.access_key_mark_used(access_key=access_key, source_ip=source_ip)
        # Faces build their Principal from the request; this says which key acted.
        request._request.access_key_id = access_key.access_key_id
        return access_key.user, access_key

    def authenticate_header(self, request: Any) -> str:
        return 'Bearer realm="bosun"'

    @staticmethod
    def _valid(access_key: AccessKey, secret: str) -> bool:
        if access_key.status != AccessKey.Status.ACTIVE or not access_key.user.is_active:
            return False
        return hmac.compare_digest(services.access_key_secret(access_key), secret)

    @staticmethod
    def _audit_failure(request: Any, key_id: str) -> None:
        audit_record(
            principal=f"access-key:{key_id[:20]}",
            action="bosun:Authenticate",
            outcome="denied",
            error_code="InvalidClientTokenId",
            source_ip=request.META.get("REMOTE_ADDR", ""),
            user_agent=request.META.get("HTTP_USER_AGENT", ""),
            face="api",
        )
