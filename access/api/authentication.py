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

from access import key_cache, services
from access.models import AccessKey
from audit.failures import audit_failed_authentication

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
        # The same remembered keys as the AWS face (access.key_cache): a deactivation takes
        # effect on both faces alike.
        usable = key_cache.usable_key(key_id)
        if usable is None or not hmac.compare_digest(usable[1].encode(), secret.encode()):
            self._audit_failure(request, key_id)
            raise AuthenticationFailed(INVALID)
        access_key = usable[0]
        source_ip = request.META.get("REMOTE_ADDR", "")
        services.access_key_mark_used(access_key=access_key, source_ip=source_ip)
        # Faces build their Principal from the request; this says which key acted.
        request._request.access_key_id = access_key.access_key_id
        return access_key.user, access_key

    def authenticate_header(self, request: Any) -> str:
        return 'Bearer realm="bosun"'

    @staticmethod
    def _audit_failure(request: Any, key_id: str) -> None:
        audit_failed_authentication(
            principal=f"access-key:{key_id[:20]}",
            action="bosun:Authenticate",
            outcome="denied",
            error_code="InvalidClientTokenId",
            source_ip=request.META.get("REMOTE_ADDR", ""),
            user_agent=request.META.get("HTTP_USER_AGENT", ""),
            face="api",
        )
