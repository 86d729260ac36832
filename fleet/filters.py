"""The node list's filters: one definition for the Fleet Manager page and the API.

Query parameters: `q` (name, id, hostname or IP address, any part), `status`, `platform`
(platform name or type), `tag` (`Key` or `Key=Value`, repeatable: all must hold), `group`
(a resource group's name: its tag query), `sort` (a field, `-` first for descending).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.db.models import F, Q
from django.db.models.expressions import OrderBy

from access.authorization import Principal
from fleet.models import NodeStatus, ResourceGroup
from fleet.querysets import ManagedNodeQuerySet
from fleet.tags import node_has_tag, tag_key_problem, tag_query_q

SORTS: dict[str, tuple[str, str]] = {
    # parameter: (label, field)
    "name": ("Name", "name"),
    "status": ("Status", "status"),
    "last_seen": ("Last seen", "last_seen_at"),
    "platform": ("Platform", "platform_name"),
    "ip": ("IP address", "ip_address"),
}
# No status means every node not deregistered: those are history, shown only when asked for.
STATUS_CHOICES = [("", "Active"), *NodeStatus.choices]
MAX_TAG_FILTERS = 10


class NodeFilter(forms.Form):
    q = forms.CharField(required=False, max_length=256, label="Search")
    status = forms.ChoiceField(required=False, choices=STATUS_CHOICES)
    platform = forms.CharField(required=False, max_length=128)
    tag = forms.CharField(required=False, max_length=400, help_text="Key or Key=Value")
    group = forms.CharField(required=False, max_length=128, label="Resource group")
    sort = forms.ChoiceField(
        required=False,
        choices=[(f"{sign}{key}", key) for key in SORTS for sign in ("", "-")],
    )

    def __init__(self, data: Any = None, *, principal: Principal) -> None:
        super().__init__(data)
        self.principal = principal
        self.resource_group: ResourceGroup | None = None

    def clean_tag(self) -> list[tuple[str, str | None]]:
        raw = self.data.getlist("tag") if hasattr(self.data, "getlist") else [self.data.get("tag")]
        texts = [text.strip() for text in raw if text and text.strip()]
        if len(texts) > MAX_TAG_FILTERS:
            raise forms.ValidationError(f"At most {MAX_TAG_FILTERS} tag filters.")
        parsed: list[tuple[str, str | None]] = []
        for text in texts:
            key, sep, value = text.partition("=")
            key = key.strip()
            problem = tag_key_problem(key)
            if problem:
                raise forms.ValidationError(problem)
            parsed.append((key, value.strip() if sep else None))
        return parsed

    def clean_group(self) -> str:
        name = self.cleaned_data["group"].strip()
        if name:
            # Only a group the principal may see can filter: its query is not theirs otherwise.
            groups = ResourceGroup.objects.visible_to(self.principal)
            self.resource_group = groups.filter(name=name).first()
            if self.resource_group is None:
                raise forms.ValidationError(f"There is no resource group named {name}.")
        return name

    def criteria(self) -> dict[str, Any]:
        """The valid criteria; a field with errors filters nothing (its error is shown)."""
        if not self.is_bound:
            return {}
        self.is_valid()
        return {name: value for name, value in self.cleaned_data.items() if value}

    def filter_except_status(self, nodes: ManagedNodeQuerySet) -> ManagedNodeQuerySet:
        """Every filter but status: the status counts are taken over this set."""
        criteria = self.criteria()
        query = criteria.get("q", "").strip()
        if query:
            nodes = nodes.filter(
                Q(name__icontains=query)
                | Q(id__icontains=query)
                | Q(hostname__icontains=query)
                | Q(ip_address__icontains=query)
            )
        platform = criteria.get("platform", "").strip()
        if platform:
            nodes = nodes.filter(
                Q(platform_name__iexact=platform) | Q(platform_type__iexact=platform)
            )
        for key, value in criteria.get("tag", []):
            nodes = nodes.filter(node_has_tag(key, [value] if value is not None else []))
        if self.resource_group is not None:
            nodes = nodes.filter(tag_query_q(self.resource_group.query))
        return nodes

    def filter_status(self, nodes: ManagedNodeQuerySet) -> ManagedNodeQuerySet:
        status = self.criteria().get("status")
        if status:
            return nodes.filter(status=status)
        return nodes.exclude(status=NodeStatus.DEREGISTERED)

    def ordering(self) -> list[OrderBy]:
        sort = self.criteria().get("sort") or "name"
        descending = sort.startswith("-")
        field = F(SORTS[sort.lstrip("-")][1])
        first = field.desc(nulls_last=True) if descending else field.asc(nulls_last=True)
        return [first, F("name").asc(), F("id").asc()]

    def sort_columns(self) -> list[dict[str, Any]]:
        """Column headers: each links to its sort; the current column's link reverses it."""
        current = self.criteria().get("sort") or "name"
        columns = []
        for key, (label, _) in SORTS.items():
            active = current.lstrip("-") == key
            descending = active and current.startswith("-")
            param = key if not active or descending else f"-{key}"
            columns.append(
                {"label": label, "param": param, "active": active, "descending": descending}
            )
        return columns
