"""Thin adapters over `authorize()` for each face (DESIGN.md §4, issue 3).

Each builds a `Principal` from what its face knows, calls `authorize()` (which audits a
denial before raising) and turns `AccessDenied` into the face's own refusal:

- DRF: `PolicyPermission`; a view declares `policy_action` and optionally
  `policy_resource(self, request) -> str` (default `"*"`). Denial: 403
  `{"detail": ..., "code": "access_denied"}`.
- HTML and htmx views: `@requires(action, resource)`; `resource` is a string or
  `callable(request, **view_kwargs) -> str`. Signed-out visitors go to sign in; a denial raises
  Django's `PermissionDenied`, which renders the branded 403 (htmx requests included).
- Websocket consumers: `await authorize_scope(scope, action, resource)` returns the Principal or
  raises `AccessDenied`; consumers close with `CLOSE_FORBIDDEN` (4403) after accepting, so the
  browser can tell "not allowed" (4403) from "signed out" (4401) and from "server down" (1006).
- Celery tasks carry the acting user's id as the keyword argument `actor_id`, never a user
  object or a Principal (task arguments are JSON). A task that calls a service which authorizes
  rebuilds the principal with `principal_for_task(actor_id)`; a task that finishes work already
  authorized when it was enqueued authorizes nothing again.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.http import HttpRequest, HttpResponse
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.models import Device
from rest_framework import exceptions, permissions
from rest_framework.request import Request

from access.authorization import Principal, authorize, principal_of
from bosun.lib.errors import AccessDenied

CLOSE_FORBIDDEN = 4403

View = TypeVar("View", bound=Callable[..., HttpResponse])
ResourceOf = Callable[..., str]


# --- DRF ------------------------------------------------------------------------------------


class PolicyDenied(exceptions.PermissionDenied):
    default_code = AccessDenied.code

    def __init__(self, message: str) -> None:
        # A dict detail is rendered as is: the API's error shape is {detail, code}.
        super().__init__({"detail": message, "code": AccessDenied.code})


class PolicyPermission(permissions.BasePermission):
    """Requires the view's `policy_action` on `policy_resource(request)` (default "*")."""

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if user is None or not user.is_authenticated:
            return False  # DRF answers 401 with the Bearer challenge
        action = getattr(view, "policy_action", None)
        if not action:
            raise ImproperlyConfigured(
                f"{type(view).__name__} uses PolicyPermission without a policy_action"
            )
        resource_of = getattr(view, "policy_resource", None)
        resource = resource_of(request) if resource_of is not None else "*"
        try:
            authorize(Principal.from_request(request, face="api"), action, resource)
        except AccessDenied as denied:
            raise PolicyDenied(denied.message) from None
        return True


# --- HTML and htmx views --------------------------------------------------------------------


def requires(action: str, resource: str | ResourceOf | None = None) -> Callable[[View], View]:
    """Sign-in plus `action` on `resource` (a string, or computed from the request and the
    view's URL keyword arguments)."""

    def decorator(view: View) -> View:
        @functools.wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            target = resource(request, **kwargs) if callable(resource) else (resource or "*")
            try:
                authorize(principal_of(request), action, target)
            except AccessDenied as denied:
                raise PermissionDenied(denied.message) from None
            return view(request, *args, **kwargs)

        return cast(View, login_required(wrapped))

    return decorator


# --- Websocket consumers --------------------------------------------------------------------


def principal_from_scope(scope: dict[str, Any], *, face: str = "ws") -> Principal:
    """The Principal of a websocket connection (reads the database: call it from a thread)."""
    user = scope.get("user")
    if user is None or not user.is_authenticated:
        raise AccessDenied("Sign in first")
    client = scope.get("client") or ("", 0)
    headers = dict(scope.get("headers") or ())
    return Principal(
        user=user,
        face=face,
        source_ip=str(client[0] or ""),
        user_agent=headers.get(b"user-agent", b"").decode("latin-1"),
        mfa=_session_verified(scope, user),
    )


def _session_verified(scope: dict[str, Any], user: User) -> bool:
    """django-otp's `is_verified()` for a scope: the session names a confirmed device that
    belongs to this user (what OTPMiddleware checks for an HTTP request)."""
    session = scope.get("session")
    persistent_id = session.get(DEVICE_ID_SESSION_KEY) if session is not None else None
    if not isinstance(persistent_id, str) or not persistent_id:
        return False
    device = Device.from_persistent_id(persistent_id)
    return device is not None and device.user_id == user.pk and bool(device.confirmed)


def _authorize_scope(scope: dict[str, Any], action: str, resource: str) -> Principal:
    principal = principal_from_scope(scope)
    authorize(principal, action, resource)
    return principal


async def authorize_scope(scope: dict[str, Any], action: str, resource: str = "*") -> Principal:
    """Allow (returning the Principal) or raise AccessDenied, audited, for a websocket scope."""
    return await database_sync_to_async(_authorize_scope)(scope, action, resource)


# --- Celery tasks ---------------------------------------------------------------------------


def principal_for_task(user_id: int, *, face: str = "task") -> Principal:
    """The principal a task acts for, from the `actor_id` it carries.

    A user deleted since the task was enqueued is refused; a deactivated one is denied by
    `authorize()` like on every other face.
    """
    user = get_user_model().objects.filter(pk=user_id).first()
    if user is None:
        raise AccessDenied(f"The user with id {user_id} who asked for this no longer exists")
    return Principal(user=cast(User, user), face=face)
