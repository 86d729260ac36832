"""What the Run Command and Documents pages share: errors as 403/404, page sizes, buttons."""

from __future__ import annotations

from access.authorization import Principal, is_allowed
from bosun.lib.pages import (
    HtmxHttpRequest,
    never_stored,
    render_form,
    service_page,
    wants_partial,
)

__all__ = [
    "PAGE_SIZE",
    "HtmxHttpRequest",
    "allowed",
    "commands_page",
    "never_stored",
    "render_form",
    "wants_partial",
]

PAGE_SIZE = 50

# A refusal becomes the branded 403, an unknown command, invocation or document the 404; any
# other refusal of a posted action comes back as a message on the page it was posted from.
commands_page = service_page("commands:list")


def allowed(principal: Principal, actions: dict[str, tuple[str, str]]) -> dict[str, bool]:
    """For buttons: {flag: whether policy would allow (action, resource)}, with no audit event
    (the service decides again, and audits, when the button is used)."""
    return {flag: is_allowed(principal, *asked) for flag, asked in actions.items()}
