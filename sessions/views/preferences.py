"""Session Manager → Preferences: the defaults every session starts with, and who each user's
or group's sessions run as. Reading them needs ssm:GetDocument (or ssm:UpdateDocument) on
SSM-SessionManagerRunShell, changing them ssm:UpdateDocument; the services decide and audit."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import Group, User
from django.http import HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from access.authorization import Principal, authorize, is_allowed, principal_of
from access.views.common import confirm
from sessions.exceptions import DoesNotExistException, SessionsValidationError
from sessions.forms import RULE_USER, PreferencesForm, RunAsRuleForm
from sessions.models import DEFAULT_DOCUMENT, RunAsRule
from sessions.services.preferences import (
    READ,
    UPDATE,
    preferences_document_arn,
    preferences_effective,
    preferences_update,
    run_as_rule_delete,
    run_as_rule_put,
)
from sessions.views.common import HtmxHttpRequest, render_form, sessions_page

PREFERENCES_TEMPLATE = "sessions/preferences.html"
# The datalist of names offered in the rule form; any other may still be typed.
NAMES_OFFERED = 200


def may_update(principal: Principal) -> bool:
    return is_allowed(principal, UPDATE, preferences_document_arn())


def _authorize_reading(principal: Principal) -> bool:
    """Whether the reader may also change them; else reading alone needs ssm:GetDocument."""
    if may_update(principal):
        return True
    authorize(principal, READ, preferences_document_arn())
    return False


@login_required
@require_http_methods(["GET", "POST"])
@sessions_page
def preferences_page(request: HtmxHttpRequest) -> HttpResponse:
    principal = principal_of(request)
    if request.method == "GET":
        can_update = _authorize_reading(principal)
        form = PreferencesForm(initial=preferences_effective().values())
        return _render(request, form, RunAsRuleForm(), can_update=can_update, invalid=False)
    form = PreferencesForm(request.POST)
    if form.is_valid():
        try:
            preferences_update(principal=principal, **form.cleaned_data)
        except SessionsValidationError as error:
            form.add_error(error.field if error.field in form.fields else None, error.message)
        else:
            messages.success(request, "Session preferences saved. New sessions start with them.")
            return redirect("sessions:preferences")
    return _render(request, form, RunAsRuleForm(), can_update=True, invalid=True)


@login_required
@require_POST
@sessions_page
def run_as_rule_add(request: HtmxHttpRequest) -> HttpResponse:
    principal = principal_of(request)
    rule_form = RunAsRuleForm(request.POST)
    if rule_form.is_valid():
        data = rule_form.cleaned_data
        who: dict[str, Any] = {}
        if data["kind"] == RULE_USER:
            who["user"] = User.objects.filter(username=data["name"]).first()
        else:
            who["group"] = Group.objects.filter(name=data["name"]).first()
        if not any(who.values()):
            rule_form.add_error("name", f"There is no {data['kind']} {data['name']!r:.160}.")
        else:
            try:
                run_as_rule_put(principal=principal, run_as=data["run_as"], **who)
            except SessionsValidationError as error:
                field = error.field if error.field in rule_form.fields else None
                rule_form.add_error(field, error.message)
            else:
                messages.success(
                    request, f"Sessions of {data['kind']} {data['name']} run as {data['run_as']}."
                )
                return redirect(reverse("sessions:preferences") + "#run-as-rules")
    form = PreferencesForm(initial=preferences_effective().values())
    return _render(request, form, rule_form, can_update=True, invalid=True)


@login_required
@require_http_methods(["GET", "POST"])
@sessions_page
def run_as_rule_remove(request: HtmxHttpRequest, rule_id: int) -> HttpResponse:
    principal = principal_of(request)
    back = reverse("sessions:preferences") + "#run-as-rules"
    rule = RunAsRule.objects.select_related("user", "group").filter(pk=rule_id).first()
    if rule is None:
        raise DoesNotExistException(f"There is no run-as rule {rule_id}.")
    if request.method == "GET":
        authorize(principal, UPDATE, preferences_document_arn())
        return confirm(
            request,
            title="Remove this run-as rule?",
            message=f"Sessions of {rule.principal_label} will run as whoever the next rule "
            f"names (now {rule.run_as}). Sessions already running are not changed.",
            button="Remove rule",
            cancel_url=back,
        )
    run_as_rule_delete(principal=principal, rule_id=rule.pk)
    messages.success(request, f"The run-as rule of {rule.principal_label} was removed.")
    return redirect(back)


def _render(
    request: HtmxHttpRequest,
    form: PreferencesForm,
    rule_form: RunAsRuleForm,
    *,
    can_update: bool,
    invalid: bool,
) -> HttpResponse:
    names = list(
        User.objects.order_by("username").values_list("username", flat=True)[:NAMES_OFFERED]
    )
    names += list(Group.objects.order_by("name").values_list("name", flat=True)[:NAMES_OFFERED])
    context: dict[str, Any] = {
        "form": form,
        "rule_form": rule_form,
        "preferences": preferences_effective(),
        "rules": sorted(
            RunAsRule.objects.select_related("user", "group"),
            key=lambda rule: (rule.group_id is not None, rule.principal_label),
        ),
        "names": names,
        "can_update": can_update,
        "document": DEFAULT_DOCUMENT,
        "env_run_as": settings.BOSUN_SESSION_RUN_AS,
        "recording_required": settings.BOSUN_SESSION_RECORDING_REQUIRED,
        "allow_root": settings.BOSUN_SESSION_ALLOW_ROOT,
    }
    return render_form(request, PREFERENCES_TEMPLATE, context, invalid=invalid)
