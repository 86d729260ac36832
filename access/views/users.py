"""User pages: the list, creating a user, and one user's groups, policies, MFA and status."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from access import directory, mfa, services
from access.directory import DirectoryError, user_arn
from access.forms import PolicyChoiceForm, UserCreateForm, UserFilterForm, UserGroupsForm
from access.models import ManagedPolicy
from access.views.common import (
    confirm,
    denied_as_403,
    may,
    paginate,
    principal_of,
    require,
)
from bosun.lib.arn import iam_arn


@login_required
@require_GET
@denied_as_403
def user_list(request: HttpRequest) -> HttpResponse:
    require(request, "bosun:ListUsers", iam_arn("user/*"))
    form = UserFilterForm(request.GET or None)
    criteria = form.cleaned_data if form.is_valid() else {}
    users = directory.users_for_listing(
        query=(criteria.get("q") or "").strip(), group=criteria.get("group")
    )
    return render(
        request,
        "access/user_list.html",
        {
            "form": form,
            "page": paginate(request, users),
            "can_manage": may(request, "bosun:ManageUsers", iam_arn("user/*")),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
@denied_as_403
def user_create(request: HttpRequest) -> HttpResponse:
    principal = require(request, "bosun:ManageUsers", iam_arn("user/*"))
    form = UserCreateForm(request.POST if request.method == "POST" else None)
    error = ""
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        try:
            user = directory.user_create(
                principal=principal,
                username=data["username"],
                email=data["email"],
                password=data["password"],
                groups=data["groups"],
            )
        except DirectoryError as problem:
            error = problem.message
        else:
            messages.success(request, f"User {user.username} created.")
            return redirect("access:user", pk=user.pk)
    return render(
        request,
        "access/user_form.html",
        {"form": form, "error": error},
        status=400 if error or form.errors else 200,
    )


def may_open_user(request: HttpRequest, user: User) -> bool:
    """Anyone with ListUsers; a user on their own page if they may manage their own keys."""
    principal = principal_of(request)
    if may(request, "bosun:ListUsers", user_arn(user)):
        return True
    return principal.user.pk == user.pk and may(
        request, "bosun:ManageOwnAccessKeys", user_arn(user)
    )


@login_required
@require_GET
@denied_as_403
def user_detail(request: HttpRequest, pk: int) -> HttpResponse:
    user = get_object_or_404(User, pk=pk)
    if not may_open_user(request, user):
        require(request, "bosun:ListUsers", user_arn(user))  # audits the denial, raises
    return render(request, "access/user_detail.html", user_context(request, user))


def user_context(request: HttpRequest, user: User) -> dict[str, object]:
    attached = user.managed_policies.order_by("name")
    own = principal_of(request).user.pk == user.pk
    key_action = "bosun:ManageOwnAccessKeys" if own else "bosun:ManageAccessKeys"
    return {
        "subject": user,
        "arn": user_arn(user),
        "may_list": may(request, "bosun:ListUsers", user_arn(user)),
        "groups": user.groups.order_by("name"),
        "groups_form": UserGroupsForm(initial={"groups": user.groups.all()}),
        "policies": attached,
        "group_policies": ManagedPolicy.objects.filter(groups__user=user)
        .distinct()
        .order_by("name"),
        "attach_form": _attach_form(ManagedPolicy.objects.exclude(users=user)),
        "keys": user.access_keys.all(),
        "max_keys": services.MAX_ACCESS_KEYS_PER_USER,
        "mfa_enabled": mfa.confirmed_device(user) is not None,
        "mfa_required": mfa.mfa_required_for(user),
        "is_self": own,
        "can_manage": may(request, "bosun:ManageUsers", user_arn(user)),
        "can_attach": may(request, "bosun:ManagePolicies", iam_arn("policy/*")),
        "can_keys": may(request, key_action, user_arn(user)),
    }


def _attach_form(choices: object) -> PolicyChoiceForm:
    form = PolicyChoiceForm()
    form.fields["policy"].queryset = choices  # type: ignore[attr-defined]
    return form


@login_required
@require_POST
@denied_as_403
def user_groups(request: HttpRequest, pk: int) -> HttpResponse:
    user = get_object_or_404(User, pk=pk)
    form = UserGroupsForm(request.POST)
    if form.is_valid():
        directory.user_set_groups(
            principal=principal_of(request), user=user, groups=form.cleaned_data["groups"]
        )
        messages.success(request, f"Groups of {user.username} saved.")
    else:
        messages.error(request, "Pick groups from the list.")
    return redirect("access:user", pk=user.pk)


@login_required
@require_POST
@denied_as_403
def user_policy_attach(request: HttpRequest, pk: int) -> HttpResponse:
    user = get_object_or_404(User, pk=pk)
    form = PolicyChoiceForm(request.POST)
    if form.is_valid():
        policy = form.cleaned_data["policy"]
        services.policy_attach(principal=principal_of(request), policy=policy, user=user)
        messages.success(request, f"{policy.name} attached to {user.username}.")
    else:
        messages.error(request, "Pick a policy to attach.")
    return redirect("access:user", pk=user.pk)


@login_required
@require_POST
@denied_as_403
def user_policy_detach(request: HttpRequest, pk: int, policy_pk: int) -> HttpResponse:
    user = get_object_or_404(User, pk=pk)
    policy = get_object_or_404(ManagedPolicy, pk=policy_pk)
    services.policy_detach(principal=principal_of(request), policy=policy, user=user)
    messages.success(request, f"{policy.name} detached from {user.username}.")
    return redirect("access:user", pk=user.pk)


@login_required
@require_http_methods(["GET", "POST"])
@denied_as_403
def user_active(request: HttpRequest, pk: int) -> HttpResponse:
    user = get_object_or_404(User, pk=pk)
    principal = require(request, "bosun:ManageUsers", user_arn(user))
    activate = not user.is_active
    if request.method == "GET":
        return confirm(
            request,
            title=f"{'Activate' if activate else 'Deactivate'} {user.username}?",
            message=(
                f"{user.username} can sign in and use their access keys again."
                if activate
                else f"{user.username} can no longer sign in, and every request signed with "
                "their access keys is refused. Nothing is deleted."
            ),
            button="Activate user" if activate else "Deactivate user",
            cancel_url=reverse("access:user", args=[user.pk]),
            danger=not activate,
        )
    try:
        directory.user_set_active(principal=principal, user=user, active=activate)
    except DirectoryError as problem:
        messages.error(request, problem.message)
    else:
        messages.success(request, f"{user.username} {'activated' if activate else 'deactivated'}.")
    return redirect("access:user", pk=user.pk)


@login_required
@require_http_methods(["GET", "POST"])
@denied_as_403
def user_mfa_reset(request: HttpRequest, pk: int) -> HttpResponse:
    user = get_object_or_404(User, pk=pk)
    principal = require(request, "bosun:ManageUsers", user_arn(user))
    if request.method == "GET":
        return confirm(
            request,
            title=f"Reset two-factor sign-in of {user.username}?",
            message=f"{user.username}'s authenticator app stops working for Bosun. If a second "
            "factor is required of them, they set up a new one at their next sign-in.",
            button="Reset MFA",
            cancel_url=reverse("access:user", args=[user.pk]),
        )
    directory.mfa_reset(principal=principal, user=user)
    messages.success(request, f"Two-factor sign-in of {user.username} reset.")
    return redirect("access:user", pk=user.pk)
