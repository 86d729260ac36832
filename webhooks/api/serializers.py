"""Shapes of the webhooks API: input checked here for form, by the services for meaning."""

from __future__ import annotations

from rest_framework import serializers

from webhooks.models import DeliveryState, WebhookDelivery, WebhookEndpoint
from webhooks.validation import MAX_NAME, MAX_URL


class WebhookSerializer(serializers.ModelSerializer):
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    arn = serializers.CharField(read_only=True)
    last_state = serializers.CharField(
        read_only=True,
        allow_null=True,
        help_text="The newest delivery's state (Pending, Delivered or Failed); null before "
        "the first.",
    )
    last_delivery_at = serializers.DateTimeField(read_only=True, allow_null=True)
    pending_count = serializers.IntegerField(read_only=True)
    failed_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = WebhookEndpoint
        fields = [
            "id",
            "name",
            "arn",
            "url",
            "events",
            "enabled",
            "created_at",
            "created_by",
            "updated_at",
            "last_state",
            "last_delivery_at",
            "pending_count",
            "failed_count",
        ]


class WebhookWithSecretSerializer(WebhookSerializer):
    secret = serializers.CharField(
        read_only=True,
        allow_null=True,
        help_text="The signing secret: in the response that created or regenerated it, and "
        "never again (null otherwise).",
    )

    class Meta(WebhookSerializer.Meta):
        fields = [*WebhookSerializer.Meta.fields, "secret"]


class WebhookCreateInput(serializers.Serializer):
    name = serializers.CharField(max_length=MAX_NAME)
    url = serializers.CharField(max_length=MAX_URL)
    events = serializers.ListField(
        child=serializers.CharField(),
        min_length=1,
        help_text='Event types or patterns; * stands for anything: ["parameter.*"], ["*"].',
    )
    enabled = serializers.BooleanField(required=False, default=True)


class WebhookUpdateInput(serializers.Serializer):
    name = serializers.CharField(max_length=MAX_NAME, required=False)
    url = serializers.CharField(max_length=MAX_URL, required=False)
    events = serializers.ListField(child=serializers.CharField(), min_length=1, required=False)
    enabled = serializers.BooleanField(required=False)
    regenerate_secret = serializers.BooleanField(
        required=False,
        default=False,
        help_text="A new signing secret, returned in this response only; the old one stops "
        "working at once.",
    )


class DeliverySerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="delivery_id", read_only=True)
    body = serializers.CharField(
        source="payload", read_only=True, help_text="The exact JSON body POSTed."
    )

    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "event_type",
            "state",
            "attempts",
            "next_attempt_at",
            "last_attempt_at",
            "last_status_code",
            "last_error",
            "created_at",
            "delivered_at",
            "body",
        ]


class DeliveryFilterInput(serializers.Serializer):
    state = serializers.ChoiceField(choices=DeliveryState.choices, required=False)
