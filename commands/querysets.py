"""Scoped reads of documents and commands (`visible_to(principal, action)`).

Kept apart from models.py so the models stay declarations; no model is imported here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Self

from django.db import models

from access.authorization import Principal, is_allowed
from commands.scope import document_arn

if TYPE_CHECKING:
    from commands.models import Command, Document  # noqa: F401

LIST_DOCUMENTS = "ssm:ListDocuments"
LIST_COMMANDS = "ssm:ListCommands"


class DocumentQuerySet(models.QuerySet["Document"]):
    def visible_to(self, principal: Principal, action: str = LIST_DOCUMENTS) -> Self:
        """Documents whose ARN the policy allows `action` on. Documents number in the
        hundreds at most, so each is decided on its own (a superuser skips that)."""
        user = principal.user
        if user.is_active and user.is_superuser:
            return self
        names = self.order_by().values_list("name", flat=True)
        allowed = [name for name in names if is_allowed(principal, action, document_arn(name))]
        return self.filter(name__in=allowed)


class CommandQuerySet(models.QuerySet["Command"]):
    def visible_to(self, principal: Principal, action: str = LIST_COMMANDS) -> Self:
        """All commands or none: AWS authorizes ListCommands on `*`. What a command did on
        each node is scoped further, by node (see selectors.invocations_visible)."""
        return self if is_allowed(principal, action) else self.none()
