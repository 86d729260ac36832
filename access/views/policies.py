"""Managed policy pages: list, detail, the JSON editor (create, edit, copy) and delete."""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from access import services
from access.exceptions import PolicyInvalid, PolicyReadOnly
from access.forms import PolicyForm
from access.models import ManagedPolicy
from access.views.common import confirm, denied_as_403, may, paginate, require
from bosun.lib.arn import iam_arn

NEW_POLICY_TEMPLATE = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ReadAppParameters",
                "Effect": "Allow",
                "Action": ["ssm:GetParameter", "ssm:GetParametersByPath"],
                "Resource": "arn:aws:ssm:*:*:parameter/myapp/*",
            }
        ],
    },
    indent=2,
)


def pretty(document: str) -> str:
    try:
        return json.dumps(json.loads(document), indent=2, ensure_ascii=False)
    except ValueError:
        return document


@login_required
@require_GET
@denied_as_403
def policy_list(request: HttpRequest) -> HttpResponse:
    require(request, "bosun:ListPolicies", iam_arn("policy/*"))
    query = request.GET.get("q", "").strip()
    policies = ManagedPolicy.objects.annotate(
        user_count=Count("users", distinct=True), group_count=Count("groups", distinct=True)
    ).order_by("-builtin", "name")
    if query:
        policies = policies.filter(Q(name__icontains=query) | Q(description__icontains=query))
    return render(
        request,
        "access/policy_list.html",
        {
            "page": paginate(request, policies),
            "q": query,
            "can_manage": may(request, "bosun:ManagePolicies", iam_arn("policy/*")),
        },
    )


@login_required
@require_GET
@denied_as_403
def policy_detail(request: HttpRequest, pk: int) -> HttpResponse:
    policy = get_object_or_404(ManagedPolicy, pk=pk)
    require(request, "bosun:ListPolicies", services.policy_arn(policy.name))
    return render(
        request,
        "access/policy_detail.html",
        {
            "policy": policy,
            "arn": services.policy_arn(policy.name),
            "document": pretty(policy.document),
            "users": policy.users.order_by("username"),
            "groups": policy.groups.order_by("name"),
            "can_manage": may(request, "bosun:ManagePolicies", services.policy_arn(policy.name)),
        },
    )


def _editor(
    request: HttpRequest,
    form: PolicyForm,
    *,
    policy: ManagedPolicy | None = None,
    error: str = "",
) -> HttpResponse:
    return render(
        request,
        "access/policy_form.html",
        {"form": form, "policy": policy, "error": error},
        status=400 if error or form.errors else 200,
    )


@login_required
@require_http_methods(["GET", "POST"])
@denied_as_403
def policy_create(request: HttpRequest) -> HttpResponse:
    principal = require(request, "bosun:ManagePolicies", iam_arn("policy/*"))
    if request.method == "GET":
        initial = {"document": NEW_POLICY_TEMPLATE}
        source = ManagedPolicy.objects.filter(pk=request.GET.get("copy") or 0).first()
        if source is not None:
            initial = {
                "name": f"{source.name}Copy",
                "description": source.description,
                "document": pretty(source.document),
            }
        return _editor(request, PolicyForm(initial=initial))
    form = PolicyForm(request.POST)
    if not form.is_valid():
        return _editor(request, form)
    try:
        policy = services.policy_create(
            principal=principal,
            name=form.cleaned_data["name"],
            description=form.cleaned_data["description"],
            document=form.cleaned_data["document"],
        )
    except PolicyInvalid as error:
        return _editor(request, form, error=error.message)
    messages.success(request, f"Policy {policy.name} created.")
    return redirect("access:policy", pk=policy.pk)


@login_required
@require_http_methods(["GET", "POST"])
@denied_as_403
def policy_edit(request: HttpRequest, pk: int) -> HttpResponse:
    policy = get_object_or_404(ManagedPolicy, pk=pk)
    principal = require(request, "bosun:ManagePolicies", services.policy_arn(policy.name))
    if request.method == "GET":
        if policy.builtin:
            messages.info(request, f"{policy.name} is built in; copy it to make your own.")
            return redirect("access:policy", pk=policy.pk)
        initial = {
            "name": policy.name,
            "description": policy.description,
            "document": pretty(policy.document),
        }
        return _editor(request, PolicyForm(initial=initial, editing=True), policy=policy)
    form = PolicyForm(request.POST, initial={"name": policy.name}, editing=True)
    if not form.is_valid():
        return _editor(request, form, policy=policy)
    try:
        services.policy_update(
            principal=principal,
            policy=policy,
            description=form.cleaned_data["description"],
            document=form.cleaned_data["document"],
        )
    except (PolicyInvalid, PolicyReadOnly) as error:
        policy.refresh_from_db()
        return _editor(request, form, policy=policy, error=error.message)
    messages.success(request, f"Policy {policy.name} saved.")
    return redirect("access:policy", pk=policy.pk)


@login_required
@require_http_methods(["GET", "POST"])
@denied_as_403
def policy_delete(request: HttpRequest, pk: int) -> HttpResponse:
    policy = get_object_or_404(ManagedPolicy, pk=pk)
    principal = require(request, "bosun:ManagePolicies", services.policy_arn(policy.name))
    detail_url = reverse("access:policy", args=[policy.pk])
    if policy.builtin:
        messages.error(request, f"{policy.name} is built in and cannot be deleted.")
        return redirect(detail_url)
    if request.method == "GET":
        attached = policy.users.count() + policy.groups.count()
        return _confirm_delete(request, policy, attached, detail_url)
    services.policy_delete(principal=principal, policy=policy)
    messages.success(request, f"Policy {policy.name} deleted.")
    return redirect("access:policies")


def _confirm_delete(
    request: HttpRequest, policy: ManagedPolicy, attached: int, cancel_url: str
) -> HttpResponse:
    note = (
        f" It is attached {attached} time(s); those users and groups lose it." if attached else ""
    )
    return confirm(
        request,
        title=f"Delete policy {policy.name}?",
        message=f"The policy is removed for good.{note}",
        button="Delete policy",
        cancel_url=cancel_url,
    )
