"""The TOTP second factor: enrolment, sign-in verification and who must use it.

Devices are django-otp's TOTPDevice rows (the shared secret is theirs to keep); a user has at
most one confirmed device. A session counts as MFA-verified once django-otp's `login()` has
run for it, which is what `aws:MultiFactorAuthPresent` reports to policies.
"""

from __future__ import annotations

from typing import cast

from django.contrib.auth.models import User
from django.db import transaction
from django.http import HttpRequest
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from access.models import AccessSettings
from audit.services import audit_record

# Where the middleware keeps the step a half-signed-in session is held at.
SESSION_STEP_KEY = "bosun_mfa_step"


def mfa_required_for(user: User) -> bool:
    rules = AccessSettings.current()
    if rules.require_mfa_for_everyone:
        return True
    return rules.mfa_required_groups.filter(user=user).exists()


def confirmed_device(user: User) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=True).first()


def enrolment_begin(*, user: User) -> TOTPDevice:
    """A fresh unconfirmed device whose secret the user scans; older unconfirmed ones go."""
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user, confirmed=False).delete()
        return TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False)


def enrolment_confirm(*, request: HttpRequest, device_id: int, token: str) -> str | None:
    """Confirm the device with a first code; it replaces any earlier device of the user.

    Returns None on success, else what to tell the user.
    """
    user = request.user
    device = TOTPDevice.objects.filter(pk=device_id, user=user, confirmed=False).first()
    problem = _token_problem(device, token)
    if problem:
        _audit(request, "bosun:EnableMfa", "denied", "InvalidToken")
        return problem
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user, confirmed=True).delete()
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        _audit(request, "bosun:EnableMfa", "success")
    otp_login(request, device)
    request.session.pop(SESSION_STEP_KEY, None)
    return None


def sign_in_verify(*, request: HttpRequest, token: str) -> str | None:
    """Check the code of a signed-in user's device and mark the session verified.

    Returns None on success, else what to tell the user.
    """
    device = confirmed_device(cast(User, request.user))
    problem = _token_problem(device, token)
    if problem:
        _audit(request, "bosun:VerifyMfa", "denied", "InvalidToken")
        return problem
    otp_login(request, device)
    request.session.pop(SESSION_STEP_KEY, None)
    _audit(request, "bosun:VerifyMfa", "success")
    return None


def mfa_disable(*, request: HttpRequest, user: User) -> None:
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user).delete()
        _audit(request, "bosun:DisableMfa", "success", resources=[f"user/{user.get_username()}"])


BAD_CODE = "That code is not right. Enter the 6-digit code your authenticator app shows now."
THROTTLED = "Too many wrong codes. Wait a few seconds, then enter the code your app shows now."


def _token_problem(device: TOTPDevice | None, token: str) -> str | None:
    token = "".join(token.split())
    if device is None:
        return BAD_CODE
    # django-otp slows down repeated failures (doubling waits) and refuses a reused code.
    allowed, _ = device.verify_is_allowed()
    if not allowed:
        return THROTTLED
    if token.isdigit() and len(token) == 6 and device.verify_token(token):
        return None
    return BAD_CODE


def _audit(
    request: HttpRequest,
    action: str,
    outcome: str,
    error_code: str = "",
    resources: list[str] | None = None,
) -> None:
    user = request.user
    audit_record(
        principal=user.get_username(),
        user_id=user.pk,
        action=action,
        outcome=outcome,
        error_code=error_code,
        resources=resources or [f"user/{user.get_username()}"],
        source_ip=request.META.get("REMOTE_ADDR", ""),
        user_agent=request.headers.get("User-Agent", ""),
        face="web",
    )
