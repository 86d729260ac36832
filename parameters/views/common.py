"""What the Parameter Store pages share: errors as 403/404, names from query strings, the
secret-bearing responses that no one may keep."""

from __future__ import annotations

from urllib.parse import urlencode

from django.http import Http404, HttpRequest
from django.urls import reverse

from access.authorization import Principal, authorize
from bosun.lib.pages import (
    HtmxHttpRequest,
    never_stored,
    render_form,
    service_page,
    wants_partial,
)
from parameters.models import Parameter
from parameters.scope import Mode, parameter_allowed, parameter_arn, parameter_scope

__all__ = [
    "HtmxHttpRequest",
    "allowed_on",
    "detail_url",
    "list_url",
    "may_some",
    "name_of",
    "never_stored",
    "parameter_page",
    "render_form",
    "require_some",
    "wants_partial",
]


# A refusal becomes the branded 403, an unknown parameter or version the 404; any other
# refusal of a posted action comes back as a message on the page it was posted from.
parameter_page = service_page("parameters:list")


def name_of(request: HttpRequest) -> str:
    """The parameter a request is about. Names hold slashes, so they travel as a query
    parameter (a page's address) or a posted field (an action), never as a path segment."""
    name = request.GET.get("name") or request.POST.get("name", "")
    if not name:
        raise Http404("Say which parameter: ?name=/path/to/parameter.")
    return name


def detail_url(name: str, **extra: object) -> str:
    return f"{reverse('parameters:detail')}?{urlencode({'name': name, **extra})}"


def list_url(path: str = "/") -> str:
    if path in ("", "/"):
        return reverse("parameters:list")
    return f"{reverse('parameters:list')}?{urlencode({'path': path})}"


def allowed_on(
    principal: Principal, parameter: Parameter, actions: dict[str, str]
) -> dict[str, bool]:
    """For buttons: {flag: whether policy would allow the action on this parameter}, with no
    audit event (the service decides again, and audits, when the button is used)."""
    tags = list(parameter.tags.values_list("key", "value"))
    return {
        flag: parameter_allowed(principal, action, parameter.name, tags)
        for flag, action in actions.items()
    }


def may_some(principal: Principal, action: str) -> bool:
    """Whether policy allows `action` on some parameter (a page-wide button, a menu)."""
    return parameter_scope(principal, action).mode is not Mode.NONE


def require_some(principal: Principal, action: str, path: str = "/") -> None:
    """Refuse a page (audited, as a 403) to whom no policy allows `action` on any parameter."""
    if not may_some(principal, action):
        authorize(principal, action, parameter_arn(f"{path.rstrip('/')}/*"))
