"""The policy simulator: may user U do action A on resource R, and which statement says so."""

from __future__ import annotations

import json
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from access.authorization import Principal, decide
from access.forms import SimulatorForm
from access.models import ManagedPolicy
from access.policy import KNOWN_ACTIONS, Decision
from access.views.common import denied_as_403, require


@login_required
@require_GET
@denied_as_403
def simulator(request: HttpRequest) -> HttpResponse:
    # A question, not a change: GET, so a result is a link one can share.
    require(request, "bosun:SimulatePolicy")
    form = SimulatorForm(request.GET if "action" in request.GET else None)
    result: dict[str, Any] | None = None
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        target = Principal(user=data["user"], source_ip=data["source_ip"] or "", mfa=data["mfa"])
        decision = decide(target, data["action"], data["resource"])
        result = {
            "decision": decision,
            "user": data["user"],
            "action": data["action"],
            "resource": data["resource"],
            "statement": _statement_json(decision),
        }
    return render(
        request,
        "access/simulator.html",
        {"form": form, "result": result, "known_actions": sorted(KNOWN_ACTIONS)},
        status=400 if form.is_bound and form.errors else 200,
    )


def _statement_json(decision: Decision) -> str:
    """The deciding statement as its policy spells it, or "" when no statement decided."""
    if decision.policy is None or decision.statement_index is None:
        return ""
    policy = ManagedPolicy.objects.filter(name=decision.policy).first()
    if policy is None:
        return ""
    statements = json.loads(policy.document).get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    if decision.statement_index >= len(statements):
        return ""
    return json.dumps(statements[decision.statement_index], indent=2, ensure_ascii=False)
