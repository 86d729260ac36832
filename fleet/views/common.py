"""What the fleet pages share: errors as 403/404, partial responses for htmx, live updates."""

from __future__ import annotations

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
    "fleet_page",
    "never_stored",
    "render_form",
    "wants_partial",
]

PAGE_SIZE = 50

fleet_page = service_page("fleet:nodes")
