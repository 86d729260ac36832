"""One command's page: what was sent where, its progress by status, its invocations; it
refreshes itself every second until the command ends. Cancelling asks first."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods
from django.views.decorators.vary import vary_on_headers

from access.authorization import authorize, principal_of
from access.views.common import confirm
from commands import selectors, statuses
from commands.exceptions import InvalidCommandId
from commands.models import Command, CommandStatus
from commands.scope import command_arn, document_arn
from commands.services.cancel import CANCEL, command_cancel
from commands.services.send import SEND
from commands.views.common import (
    PAGE_SIZE,
    HtmxHttpRequest,
    allowed,
    commands_page,
    wants_partial,
)
from commands.views.progress import progress_of
from fleet.targets import GROUP_NAME, INSTANCE_IDS, TAG_KEY, TAG_PREFIX

DETAIL_TEMPLATE = "commands/detail.html"
LEFT_OUT = (
    ("refused", "refused by policy"),
    ("unknown", "unknown"),
    ("deregistered", "deregistered"),
)


def target_lines(targets: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(what, values) for each target, as people read them."""
    lines = []
    for target in targets:
        key = str(target.get("Key", ""))
        values = ", ".join(str(value) for value in target.get("Values") or [])
        if key == INSTANCE_IDS:
            lines.append(("Nodes", values))
        elif key == GROUP_NAME:
            lines.append(("Resource group", values))
        elif key == TAG_KEY:
            lines.append(("Has tag", values))
        elif key.startswith(TAG_PREFIX):
            lines.append((f"Tag {key.removeprefix(TAG_PREFIX)}", values))
        else:
            lines.append((key, values))
    return lines


def shown_status(command: Command, started: bool) -> str:
    """The command's status for the page. The row says Pending until the sweep or the end
    settles it, though its invocations are already running: the page says so at once."""
    if command.status == CommandStatus.PENDING and started:
        return CommandStatus.IN_PROGRESS
    return command.status


def _context(request: HtmxHttpRequest, command: Command) -> dict[str, Any]:
    principal = principal_of(request)
    invocations = selectors.invocations_visible(principal=principal, command=command)
    progress = progress_of(selectors.status_counts(invocations))
    chosen = request.GET.get("status", "")
    shown = invocations.filter(status_details=chosen) if chosen in progress.counts else invocations
    started = any(status not in (statuses.PENDING, statuses.DELAYED) for status in progress.counts)
    left_out = command.left_out if isinstance(command.left_out, dict) else {}
    status = shown_status(command, started)
    return {
        "command": command,
        "status": status,
        "status_details": command.status_details if status == command.status else status,
        "progress": progress,
        "chosen_status": chosen if chosen in progress.counts else "",
        "page": Paginator(shown, PAGE_SIZE).get_page(request.GET.get("page")),
        "hidden_count": max(0, command.target_count - progress.total),
        "targets": target_lines(command.targets if isinstance(command.targets, list) else []),
        "left_out": [(label, left_out[key]) for key, label in LEFT_OUT if left_out.get(key)],
        "live": not command.is_terminal,
        **allowed(
            principal,
            {
                "can_cancel": (CANCEL, command_arn(command.command_id)),
                "can_rerun": (SEND, document_arn(command.document_name)),
            },
        ),
    }


@login_required
@require_GET
@vary_on_headers("HX-Request")
@commands_page
def command_detail(request: HtmxHttpRequest, command_id: str) -> HttpResponse:
    command = selectors.command_get(principal=principal_of(request), command_id=str(command_id))
    context = _context(request, command)
    template = f"{DETAIL_TEMPLATE}#live" if wants_partial(request) else DETAIL_TEMPLATE
    return render(request, template, context)


@login_required
@require_http_methods(["GET", "POST"])
@commands_page
def command_cancel_page(request: HtmxHttpRequest, command_id: str) -> HttpResponse:
    principal = principal_of(request)
    command = selectors.command_get(principal=principal, command_id=str(command_id))
    back = reverse("commands:detail", args=[command.command_id])
    if command.is_terminal:
        messages.info(request, f"The command has already ended ({command.status}).")
        return redirect(back)
    if request.method == "GET":
        authorize(principal, CANCEL, command_arn(command.command_id))
        return confirm(
            request,
            title="Cancel this command?",
            message=f"{command.document_name} is not sent to any further node. Nodes that "
            "have not started it never will; on nodes running it now, the agent stops its "
            "processes. What already finished keeps its result.",
            button="Cancel command",
            cancel_url=back,
        )
    try:
        still_open = command_cancel(principal=principal, command_id=command.command_id)
    except InvalidCommandId as error:
        messages.info(request, error.message)
    else:
        messages.success(
            request,
            f"Cancelling: {still_open} invocation{'s' if still_open != 1 else ''} were still open.",
        )
    return redirect(back)
