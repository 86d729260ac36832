"""Starting a session: a node and a reason; the service authorizes it (ssm:StartSession on the
node and the session document), tells the agent, and the browser goes to the terminal."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_http_methods

from access.authorization import principal_of
from bosun.lib.errors import BosunError
from fleet.models import ManagedNode, NodeStatus
from sessions.forms import SessionStartForm
from sessions.services.preferences import preferences_effective
from sessions.services.sessions import session_start
from sessions.views.common import START, HtmxHttpRequest, render_form, sessions_page

START_TEMPLATE = "sessions/start.html"
# The datalist of nodes offered; any other id may still be typed.
NODES_OFFERED = 200


# The service's error fields the form shows beside their own input; the rest go by the node.
FORM_FIELDS = ("reason", "command")


@login_required
@require_http_methods(["GET", "POST"])
@sessions_page
def session_start_page(request: HtmxHttpRequest) -> HttpResponse:
    principal = principal_of(request)
    required = preferences_effective().reason_required
    if request.method == "GET":
        form = SessionStartForm(
            initial={"node_id": request.GET.get("node", "")}, reason_required=required
        )
        return _render(request, form, invalid=False)
    form = SessionStartForm(request.POST, reason_required=required)
    if not form.is_valid():
        return _render(request, form, invalid=True)
    document_name, parameters = form.document()
    try:
        session = session_start(
            principal=principal,
            node_id=form.cleaned_data["node_id"],
            reason=form.cleaned_data["reason"],
            document_name=document_name,
            parameters=parameters,
            source_ip=principal.source_ip,
        )
    except BosunError as error:
        # Refused, unknown, offline: all said beside the form, which keeps what was typed.
        field = getattr(error, "field", "")
        field = field if field in FORM_FIELDS else "node_id"
        form.add_error(field, error.message)
        return _render(request, form, invalid=True)
    return redirect("sessions:terminal", session_id=session.session_id)


def _render(request: HtmxHttpRequest, form: SessionStartForm, *, invalid: bool) -> HttpResponse:
    principal = principal_of(request)
    nodes = (
        ManagedNode.objects.filter(status=NodeStatus.ONLINE)
        .visible_to(principal, START)
        .order_by("name", "pk")
        .values_list("pk", "name")[:NODES_OFFERED]
    )
    context: dict[str, Any] = {
        "form": form,
        "nodes": list(nodes),
        "input_off": not preferences_effective().record_input,
    }
    return render_form(request, START_TEMPLATE, context, invalid=invalid)
