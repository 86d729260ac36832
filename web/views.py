"""HTML and JSON pages of the dashboard shell: authenticate, call a service, render."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.template import loader
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from access.adapters import requires
from access.authorization import principal_of
from bosun.celery import app as celery_app
from bosun.lib import health
from fleet.selectors import fleet_summary
from web import selectors, services

RECENT_CHECKS = 5


@login_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    checks = selectors.system_checks_visible_to(request.user)[:RECENT_CHECKS]
    return render(
        request,
        "web/home.html",
        {
            "checks": checks,
            "worker": selectors.worker_status(),
            "stack": selectors.stack_summary(),
            "fleet": fleet_summary(principal_of(request)),
        },
    )


@login_required
@require_GET
def worker_card(request: HttpRequest) -> HttpResponse:
    return render(request, "web/home.html#worker-card", {"worker": selectors.worker_status()})


@requires("bosun:RunSystemCheck")
@require_POST
def system_check_create(request: HttpRequest) -> HttpResponse:
    check = services.system_check_request(actor=request.user)
    return render(request, "web/home.html#check-created", {"check": check}, status=201)


@login_required
@require_GET
def system_check_row(request: HttpRequest, check_id: int) -> HttpResponse:
    check = get_object_or_404(selectors.system_checks_visible_to(request.user), pk=check_id)
    return render(request, "web/home.html#check-row", {"check": check})


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness and readiness for load balancers: 200 when every store answers, else 503."""
    checks = health.check_all(celery_app)
    ok = all(check.ok for check in checks.values())
    body = {
        "status": "ok" if ok else "unavailable",
        "checks": {name: check.as_dict() for name, check in checks.items()},
    }
    return JsonResponse(body, status=200 if ok else 503)


# --- Error pages: branded HTML for people, JSON for API clients ------------------------------


def _wants_json(request: HttpRequest) -> bool:
    return request.path.startswith("/api/") or "application/json" in request.headers.get(
        "Accept", ""
    )


def _error(request: HttpRequest, status: int, code: str, detail: str) -> HttpResponse:
    if _wants_json(request):
        return JsonResponse({"detail": detail, "code": code}, status=status)
    return render(request, f"{status}.html", {"detail": detail, "code": code}, status=status)


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _error(request, 403, "permission_denied", "You do not have permission to do this.")


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _error(request, 404, "not_found", "There is nothing at this address.")


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    return _error(
        request,
        403,
        "csrf_failed",
        "This form was open too long or came from another site. Reload the page and try again.",
    )


def server_error(request: HttpRequest) -> HttpResponse:
    if _wants_json(request):
        return JsonResponse({"detail": "Internal error.", "code": "internal_error"}, status=500)
    # No template context processors here: the failure may be in one of them.
    return HttpResponse(loader.get_template("500.html").render({}), status=500)
