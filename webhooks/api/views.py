"""Webhooks API endpoints: adapt JSON to the services and selectors the pages use too."""

from __future__ import annotations

import uuid
from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from access.authorization import Principal, principal_of
from webhooks import selectors, services
from webhooks.api import serializers as shapes
from webhooks.models import WebhookEndpoint

TAG = "Webhooks"
NO_STORE = {"Cache-Control": "no-store"}


class WebhooksPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class WebhooksAPIView(APIView):
    """Authenticated by the project's defaults; authorized by the services it calls, so an
    API caller and a page visitor meet the very same rules."""

    pagination_class = WebhooksPagination

    def principal(self) -> Principal:
        return principal_of(self.request, face="api")


def _valid(shape: type[serializers.Serializer], request: Request) -> dict[str, Any]:
    if not isinstance(request.data, dict):
        raise exceptions.ValidationError({"non_field_errors": ["The body is a JSON object."]})
    serializer = shape(data=request.data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def _shown(principal: Principal, endpoint: WebhookEndpoint, secret: str | None) -> dict:
    """The endpoint as listed, with the secret where this response is the one to carry it."""
    fresh = selectors.webhook_endpoint_get(principal=principal, endpoint_id=endpoint.pk)
    return {**shapes.WebhookSerializer(fresh).data, "secret": secret}


class WebhookListView(WebhooksAPIView):
    @extend_schema(tags=[TAG], responses=shapes.WebhookSerializer(many=True))
    def get(self, request: Request) -> Response:
        """The webhooks the caller may see, with their newest delivery's state."""
        endpoints = selectors.webhook_endpoint_listing(self.principal())
        paginator = WebhooksPagination()
        page = paginator.paginate_queryset(endpoints, request, view=self)
        return paginator.get_paginated_response(shapes.WebhookSerializer(page, many=True).data)

    @extend_schema(
        tags=[TAG],
        request=shapes.WebhookCreateInput,
        responses={201: shapes.WebhookWithSecretSerializer},
    )
    def post(self, request: Request) -> Response:
        """Creates a webhook; its signing secret is in this response only, never again."""
        data = _valid(shapes.WebhookCreateInput, request)
        principal = self.principal()
        endpoint, secret = services.webhook_endpoint_create(principal=principal, **data)
        return Response(
            _shown(principal, endpoint, secret), status=status.HTTP_201_CREATED, headers=NO_STORE
        )


class WebhookDetailView(WebhooksAPIView):
    @extend_schema(tags=[TAG], responses=shapes.WebhookSerializer)
    def get(self, request: Request, endpoint_id: int) -> Response:
        endpoint = selectors.webhook_endpoint_get(
            principal=self.principal(), endpoint_id=endpoint_id
        )
        return Response(shapes.WebhookSerializer(endpoint).data)

    @extend_schema(
        tags=[TAG],
        request=shapes.WebhookUpdateInput,
        responses=shapes.WebhookWithSecretSerializer,
    )
    def patch(self, request: Request, endpoint_id: int) -> Response:
        """Changes what is given; `regenerate_secret` returns the new secret, once."""
        data = _valid(shapes.WebhookUpdateInput, request)
        principal = self.principal()
        endpoint, secret = services.webhook_endpoint_update(
            principal=principal, endpoint_id=endpoint_id, **data
        )
        return Response(_shown(principal, endpoint, secret), headers=NO_STORE if secret else None)

    @extend_schema(tags=[TAG], responses={204: None})
    def delete(self, request: Request, endpoint_id: int) -> Response:
        """Deletes the webhook, its queued deliveries and its delivery history."""
        services.webhook_endpoint_delete(principal=self.principal(), endpoint_id=endpoint_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookDeliveryListView(WebhooksAPIView):
    @extend_schema(
        tags=[TAG],
        parameters=[OpenApiParameter("state", str, enum=["Pending", "Delivered", "Failed"])],
        responses=shapes.DeliverySerializer(many=True),
    )
    def get(self, request: Request, endpoint_id: int) -> Response:
        """The webhook's deliveries, newest first (kept 30 days)."""
        filters = shapes.DeliveryFilterInput(data=request.query_params)
        filters.is_valid(raise_exception=True)
        endpoint = selectors.webhook_endpoint_get(
            principal=self.principal(), endpoint_id=endpoint_id
        )
        deliveries = selectors.webhook_deliveries(
            endpoint, state=filters.validated_data.get("state")
        )
        paginator = WebhooksPagination()
        page = paginator.paginate_queryset(deliveries, request, view=self)
        return paginator.get_paginated_response(shapes.DeliverySerializer(page, many=True).data)


class WebhookTestView(WebhooksAPIView):
    @extend_schema(tags=[TAG], request=None, responses={202: shapes.DeliverySerializer})
    def post(self, request: Request, endpoint_id: int) -> Response:
        """Queues a "webhook.test" event to this webhook only; follow it in its deliveries."""
        delivery = services.webhook_endpoint_test(
            principal=self.principal(), endpoint_id=endpoint_id
        )
        return Response(shapes.DeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)


class WebhookDeliveryRetryView(WebhooksAPIView):
    @extend_schema(tags=[TAG], request=None, responses={202: shapes.DeliverySerializer})
    def post(self, request: Request, endpoint_id: int, delivery_id: uuid.UUID) -> Response:
        """Queues a failed delivery again, now, for one more attempt (same id and body)."""
        delivery = services.webhook_delivery_retry(
            principal=self.principal(), endpoint_id=endpoint_id, delivery_id=delivery_id
        )
        return Response(shapes.DeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)
