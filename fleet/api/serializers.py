"""Shapes of the fleet API: input checked here for form, by the services for meaning."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from fleet.models import Activation, ManagedNode, ResourceGroup
from fleet.services.activations import MAX_REGISTRATION_LIMIT, MAX_TEXT


class NodeSerializer(serializers.ModelSerializer):
    tags = serializers.SerializerMethodField()
    suspected_clone = serializers.SerializerMethodField()

    class Meta:
        model = ManagedNode
        fields = [
            "id",
            "name",
            "status",
            "status_changed_at",
            "last_seen_at",
            "registered_at",
            "deregistered_at",
            "activation_id",
            "hostname",
            "platform_type",
            "platform_name",
            "platform_version",
            "kernel_version",
            "architecture",
            "ip_address",
            "ip_addresses",
            "agent_version",
            "key_rotated_at",
            "suspected_clone",
            "clone_suspected_at",
            "tags",
        ]

    def get_tags(self, node: ManagedNode) -> dict[str, str]:
        return {tag.key: tag.value for tag in node.tags.all()}

    def get_suspected_clone(self, node: ManagedNode) -> bool:
        return node.clone_suspected_at is not None


class NodeDetailSerializer(NodeSerializer):
    class Meta(NodeSerializer.Meta):
        fields = [*NodeSerializer.Meta.fields, "facts", "facts_updated_at"]


class TagsInput(serializers.Serializer):
    # {"Env": "dev"} or AWS's [{"Key": "Env", "Value": "dev"}]; the service checks the rules.
    tags = serializers.JSONField()


class TagKeysInput(serializers.Serializer):
    keys = serializers.ListField(child=serializers.CharField(allow_blank=True), min_length=1)


class BulkTagsInput(serializers.Serializer):
    node_ids = serializers.ListField(child=serializers.CharField(), min_length=1)
    add = serializers.JSONField(required=False)
    remove = serializers.ListField(child=serializers.CharField(), required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("add" in attrs) == ("remove" in attrs):
            raise serializers.ValidationError("Give either add (tags) or remove (tag keys).")
        return attrs


class ActivationSerializer(serializers.ModelSerializer):
    expired = serializers.BooleanField(read_only=True)
    exhausted = serializers.BooleanField(read_only=True)

    class Meta:
        model = Activation
        fields = [
            "id",
            "description",
            "default_instance_name",
            "registration_limit",
            "registrations_count",
            "node_tags",
            "expires_at",
            "created_at",
            "expired",
            "exhausted",
        ]


class ActivationInput(serializers.Serializer):
    description = serializers.CharField(
        max_length=MAX_TEXT, required=False, default="", allow_blank=True
    )
    default_instance_name = serializers.CharField(
        max_length=MAX_TEXT, required=False, default="", allow_blank=True
    )
    registration_limit = serializers.IntegerField(
        min_value=1, max_value=MAX_REGISTRATION_LIMIT, required=False, default=1
    )
    expires_at = serializers.DateTimeField(required=False, default=None)
    tags = serializers.JSONField(required=False, default=dict)


class ResourceGroupSerializer(serializers.ModelSerializer):
    class Meta:
        model = ResourceGroup
        fields = ["name", "description", "query", "created_at", "updated_at"]


class ResourceGroupInput(serializers.Serializer):
    name = serializers.CharField(max_length=128)
    description = serializers.CharField(
        max_length=512, required=False, default="", allow_blank=True
    )
    query = serializers.JSONField()


class ResourceGroupUpdateInput(serializers.Serializer):
    description = serializers.CharField(max_length=512, required=False, allow_blank=True)
    query = serializers.JSONField()


class TargetsInput(serializers.Serializer):
    targets = serializers.JSONField()
    action = serializers.CharField(required=False, default="ssm:DescribeInstanceInformation")
