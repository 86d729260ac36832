"""Holds a signed-in session at the second-factor step until it is verified or enrolled.

The step is decided once, when the password is accepted (`remember_mfa_step`, wired to
Django's user_logged_in signal), and kept in the session, so ordinary requests pay no query
for it. A change of the MFA requirement therefore applies from a user's next sign-in.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse

from access import mfa

SESSION_KEY = mfa.SESSION_STEP_KEY
VERIFY, SETUP = "mfa-verify", "mfa-setup"

# Paths a half-signed-in session may still reach.
_OPEN_PREFIXES = ("/static/", "/healthz", "/logout/", "/login/mfa/", "/account/mfa/")


def remember_mfa_step(sender: Any, request: HttpRequest, user: Any, **kwargs: Any) -> None:
    if request is None or not hasattr(request, "session"):
        return
    if mfa.confirmed_device(user) is not None:
        request.session[SESSION_KEY] = VERIFY
    elif mfa.mfa_required_for(user):
        request.session[SESSION_KEY] = SETUP
    else:
        request.session.pop(SESSION_KEY, None)


class MfaMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        step = request.session.get(SESSION_KEY) if hasattr(request, "session") else None
        if step and not request.path.startswith(_OPEN_PREFIXES):
            if request.path.startswith("/api/"):
                return JsonResponse(
                    {
                        "detail": "Finish signing in with your second factor.",
                        "code": "mfa_required",
                    },
                    status=403,
                )
            return redirect(f"{reverse(step)}?next={request.get_full_path()}")
        return self.get_response(request)
