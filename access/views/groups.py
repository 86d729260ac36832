"""Group pages: list and create, members, attached policies, who must use a second factor."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import Group
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from access import directory, services
from access.directory import DirectoryError, group_arn
from access.forms import GroupCreateForm, GroupMemberForm, PolicyChoiceForm
from access.models import AccessSettings, ManagedPolicy
from access.views.common import confirm, denied_as_403, may, principal_of, require
from bosun.lib.arn import iam_arn


def _list_page(
    request: HttpRequest, form: GroupCreateForm, error: str = "", status: int = 200
) -> HttpResponse:
    rules = AccessSettings.current()
    return render(
        request,
        "access/group_list.html",
        {
            "groups": directory.groups_for_listing(),
            "mfa_groups": set(rules.mfa_required_groups.values_list("pk", flat=True)),
            "mfa_everyone": rules.require_mfa_for_everyone,
            "form": form,
            "error": error,
            "can_manage": may(request, "bosun:ManageGroups", iam_arn("group/*")),
            "can_manage_users": may(request, "bosun:ManageUsers", iam_arn("user/*")),
        },
        status=status,
    )


@login_required
@require_http_methods(["GET", "POST"])
@denied_as_403
def group_list(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        require(request, "bosun:ListUsers", iam_arn("group/*"))
        return _list_page(request, GroupCreateForm())
    principal = require(request, "bosun:ManageGroups", iam_arn("group/*"))
    form = GroupCreateForm(request.POST)
    if not form.is_valid():
        return _list_page(request, form, status=400)
    try:
        group = directory.group_create(principal=principal, name=form.cleaned_data["name"])
    except DirectoryError as problem:
        return _list_page(request, form, error=problem.message, status=400)
    messages.success(request, f"Group {group.name} created.")
    return redirect("access:group", pk=group.pk)


@login_required
@require_GET
@denied_as_403
def group_detail(request: HttpRequest, pk: int) -> HttpResponse:
    group = get_object_or_404(Group, pk=pk)
    require(request, "bosun:ListUsers", group_arn(group))
    members = group.user_set.order_by("username")
    attach_form = PolicyChoiceForm()
    attach_form.fields["policy"].queryset = ManagedPolicy.objects.exclude(groups=group)  # type: ignore[attr-defined]
    member_form = GroupMemberForm()
    member_form.fields["user"].queryset = (  # type: ignore[attr-defined]
        member_form.fields["user"].queryset.exclude(groups=group)  # type: ignore[attr-defined]
    )
    return render(
        request,
        "access/group_detail.html",
        {
            "group": group,
            "arn": group_arn(group),
            "members": members,
            "policies": group.managed_policies.order_by("name"),
            "attach_form": attach_form,
            "member_form": member_form,
            "mfa_required": AccessSettings.current().mfa_required_groups.filter(pk=pk).exists(),
            "can_manage": may(request, "bosun:ManageGroups", group_arn(group)),
            "can_manage_users": may(request, "bosun:ManageUsers", iam_arn("user/*")),
            "can_attach": may(request, "bosun:ManagePolicies", iam_arn("policy/*")),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
@denied_as_403
def group_delete(request: HttpRequest, pk: int) -> HttpResponse:
    group = get_object_or_404(Group, pk=pk)
    principal = require(request, "bosun:ManageGroups", group_arn(group))
    if request.method == "GET":
        count = group.user_set.count()
        return confirm(
            request,
            title=f"Delete group {group.name}?",
            message=f"Its {count} member(s) stay, but lose the policies attached to the group.",
            button="Delete group",
            cancel_url=reverse("access:group", args=[group.pk]),
        )
    directory.group_delete(principal=principal, group=group)
    messages.success(request, f"Group {group.name} deleted.")
    return redirect("access:groups")


@login_required
@require_POST
@denied_as_403
def group_member(request: HttpRequest, pk: int) -> HttpResponse:
    """Add (or with remove=1, take out) one member: the user's groups, changed by one."""
    group = get_object_or_404(Group, pk=pk)
    form = GroupMemberForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Pick a user.")
        return redirect("access:group", pk=pk)
    directory.group_member_set(
        principal=principal_of(request),
        group=group,
        user=form.cleaned_data["user"],
        member=request.POST.get("remove") != "1",
    )
    messages.success(request, f"Members of {group.name} saved.")
    return redirect("access:group", pk=pk)


@login_required
@require_POST
@denied_as_403
def group_policy(request: HttpRequest, pk: int) -> HttpResponse:
    """Attach a policy (or with detach=1, detach it)."""
    group = get_object_or_404(Group, pk=pk)
    form = PolicyChoiceForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Pick a policy.")
        return redirect("access:group", pk=pk)
    policy = form.cleaned_data["policy"]
    principal = principal_of(request)
    if request.POST.get("detach") == "1":
        services.policy_detach(principal=principal, policy=policy, group=group)
        messages.success(request, f"{policy.name} detached from {group.name}.")
    else:
        services.policy_attach(principal=principal, policy=policy, group=group)
        messages.success(request, f"{policy.name} attached to {group.name}.")
    return redirect("access:group", pk=pk)


@login_required
@require_POST
@denied_as_403
def group_mfa(request: HttpRequest, pk: int) -> HttpResponse:
    group = get_object_or_404(Group, pk=pk)
    required = request.POST.get("required") == "1"
    directory.mfa_requirement_set(principal=principal_of(request), group=group, required=required)
    messages.success(
        request,
        f"Members of {group.name} {'must now' if required else 'no longer need to'} sign in "
        "with a second factor (from their next sign-in).",
    )
    return redirect("access:group", pk=pk)


@login_required
@require_POST
@denied_as_403
def mfa_everyone(request: HttpRequest) -> HttpResponse:
    required = request.POST.get("required") == "1"
    directory.mfa_requirement_set(principal=principal_of(request), required=required)
    messages.success(
        request,
        "Everyone must now sign in with a second factor (from their next sign-in)."
        if required
        else "A second factor is no longer required of everyone.",
    )
    return redirect("access:groups")
