"""Writes of the directory: users, groups and who must use a second factor.

Like access.services, every service takes the acting principal, authorizes before opening its
transaction (so a denial's audit event is never rolled back with it), owns the transaction and
audits the change. Passwords are checked by the form (Django's validators) before they get here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib.auth.models import Group, User
from django.db import transaction
from django.db.models import Count, Exists, OuterRef, Prefetch, Q, QuerySet
from django_otp.plugins.otp_totp.models import TOTPDevice

from access.authorization import Principal, authorize
from access.models import AccessSettings, ManagedPolicy
from bosun.lib.arn import iam_arn
from bosun.lib.errors import BosunError


class DirectoryError(BosunError):
    aws_code = "InvalidInputException"
    code = "directory_invalid"


def user_arn(user: User | str) -> str:
    return iam_arn(f"user/{user if isinstance(user, str) else user.get_username()}")


def group_arn(group: Group | str) -> str:
    return iam_arn(f"group/{group if isinstance(group, str) else group.name}")


ALL_USERS = "user/*"


def _audit(principal: Principal, action: str, resources: list[str], **params: Any) -> None:
    principal.record(action, resources=resources, params=params)


# --- Users ----------------------------------------------------------------------------------


def user_create(
    *,
    principal: Principal,
    username: str,
    password: str,
    email: str = "",
    groups: Iterable[Group] = (),
) -> User:
    authorize(principal, "bosun:ManageUsers", user_arn(username))
    with transaction.atomic():
        if User.objects.filter(username__iexact=username).exists():
            raise DirectoryError(f"A user named {username} already exists")
        user = User.objects.create_user(username=username, email=email, password=password)
        group_list = list(groups)
        user.groups.set(group_list)
        _audit(
            principal,
            "bosun:CreateUser",
            [user_arn(user)],
            groups=sorted(group.name for group in group_list),
        )
    return user


def user_set_active(*, principal: Principal, user: User, active: bool) -> None:
    authorize(principal, "bosun:ManageUsers", user_arn(user))
    if not active and user.pk == principal.user.pk:
        raise DirectoryError("You cannot deactivate yourself")
    with transaction.atomic():
        user.is_active = active
        user.save(update_fields=["is_active"])
        _audit(principal, "bosun:UpdateUser", [user_arn(user)], active=active)


def user_set_groups(*, principal: Principal, user: User, groups: Iterable[Group]) -> None:
    authorize(principal, "bosun:ManageUsers", user_arn(user))
    group_list = list(groups)
    with transaction.atomic():
        user.groups.set(group_list)
        _audit(
            principal,
            "bosun:UpdateUserGroups",
            [user_arn(user)],
            groups=sorted(group.name for group in group_list),
        )


def group_member_set(*, principal: Principal, group: Group, user: User, member: bool) -> None:
    """Add `user` to `group` or take them out, leaving their other groups as they are."""
    groups = set(user.groups.all())
    if member:
        groups.add(group)
    else:
        groups.discard(group)
    user_set_groups(principal=principal, user=user, groups=groups)


def mfa_reset(*, principal: Principal, user: User) -> None:
    """Remove the user's authenticator; they enrol again at their next sign-in if required."""
    authorize(principal, "bosun:ManageUsers", user_arn(user))
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user).delete()
        _audit(principal, "bosun:ResetMfa", [user_arn(user)])


# --- Groups ---------------------------------------------------------------------------------


def group_create(*, principal: Principal, name: str) -> Group:
    authorize(principal, "bosun:ManageGroups", group_arn(name))
    with transaction.atomic():
        if Group.objects.filter(name__iexact=name).exists():
            raise DirectoryError(f"A group named {name} already exists")
        group = Group.objects.create(name=name)
        _audit(principal, "bosun:CreateGroup", [group_arn(group)])
    return group


def group_delete(*, principal: Principal, group: Group) -> None:
    authorize(principal, "bosun:ManageGroups", group_arn(group))
    with transaction.atomic():
        resource = group_arn(group)
        group.delete()
        _audit(principal, "bosun:DeleteGroup", [resource])


def mfa_requirement_set(
    *, principal: Principal, required: bool, group: Group | None = None
) -> None:
    """Require a second factor of one group's members, or (no group) of everyone."""
    if group is None:
        authorize(principal, "bosun:ManageUsers", iam_arn(ALL_USERS))
    else:
        authorize(principal, "bosun:ManageGroups", group_arn(group))
    with transaction.atomic():
        rules = AccessSettings.current()
        if group is None:
            rules.require_mfa_for_everyone = required
            rules.save(update_fields=["require_mfa_for_everyone"])
            resources = [iam_arn(ALL_USERS)]
        else:
            if required:
                rules.mfa_required_groups.add(group)
            else:
                rules.mfa_required_groups.remove(group)
            resources = [group_arn(group)]
        _audit(principal, "bosun:SetMfaRequirement", resources, required=required)


# --- Reads for the pages --------------------------------------------------------------------


def users_for_listing(*, query: str = "", group: Group | None = None) -> QuerySet[User]:
    """Users with what the list shows, in a fixed number of queries."""
    users = (
        User.objects.annotate(
            key_count=Count("access_keys", distinct=True),
            has_mfa=Exists(TOTPDevice.objects.filter(user=OuterRef("pk"), confirmed=True)),
        )
        .prefetch_related(
            Prefetch("groups", queryset=Group.objects.order_by("name")),
            Prefetch("managed_policies", queryset=ManagedPolicy.objects.only("pk", "name")),
        )
        .order_by("username")
    )
    if query:
        users = users.filter(Q(username__icontains=query) | Q(email__icontains=query))
    if group is not None:
        users = users.filter(groups=group)
    return users


def groups_for_listing() -> QuerySet[Group]:
    return Group.objects.annotate(
        member_count=Count("user", distinct=True),
        policy_count=Count("managed_policies", distinct=True),
    ).order_by("name")
