"""Fleet API endpoints: adapt JSON to the services and selectors the pages use too."""

from __future__ import annotations

from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from access.policy import canonical_action
from fleet import selectors, services
from fleet.api import serializers as shapes
from fleet.api.common import FleetAPIView, FleetPagination, body
from fleet.exceptions import FleetValidationError
from fleet.filters import NodeFilter
from fleet.targets import targets_resolve


def _valid(shape: type[serializers.Serializer], request: Request) -> dict:
    serializer = shape(data=body(request))
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


# --- Nodes ----------------------------------------------------------------------------------


class NodeListView(FleetAPIView):
    """GET: the nodes the caller may see, with the Fleet Manager page's filters."""

    def get(self, request: Request) -> Response:
        filters = NodeFilter(request.query_params or None, principal=self.principal())
        if filters.is_bound and not filters.is_valid():
            raise serializers.ValidationError(filters.errors)
        listing = selectors.node_listing(principal=self.principal(), filters=filters)
        paginator = FleetPagination()
        page = paginator.paginate_queryset(listing.nodes, request, view=self)
        response = paginator.get_paginated_response(shapes.NodeSerializer(page, many=True).data)
        response.data["counts"] = listing.counts
        return response


class NodeDetailView(FleetAPIView):
    def get(self, request: Request, node_id: str) -> Response:
        node = selectors.node_get(principal=self.principal(), node_id=node_id)
        return Response(shapes.NodeDetailSerializer(node).data)


class NodeTagsView(FleetAPIView):
    """POST adds (or overwrites) tags; DELETE removes tag keys (body `keys`, or `?key=`)."""

    def post(self, request: Request, node_id: str) -> Response:
        data = _valid(shapes.TagsInput, request)
        tags = services.node_tags_add(
            principal=self.principal(), node_id=node_id, tags=data["tags"]
        )
        return Response({"id": node_id, "tags": tags})

    def delete(self, request: Request, node_id: str) -> Response:
        keys = request.query_params.getlist("key")
        if not keys:
            keys = _valid(shapes.TagKeysInput, request)["keys"]
        tags = services.node_tags_remove(principal=self.principal(), node_id=node_id, keys=keys)
        return Response({"id": node_id, "tags": tags})


class NodeBulkTagsView(FleetAPIView):
    """POST {"node_ids": [...], "add": {...}} or {"node_ids": [...], "remove": [keys]}."""

    def post(self, request: Request) -> Response:
        data = _valid(shapes.BulkTagsInput, request)
        result = services.node_tags_bulk_edit(
            principal=self.principal(),
            node_ids=data["node_ids"],
            add=data.get("add"),
            remove=data.get("remove"),
        )
        return Response(
            {"changed": result.changed, "refused": result.refused, "skipped": result.skipped}
        )


class NodeDeregisterView(FleetAPIView):
    def post(self, request: Request, node_id: str) -> Response:
        services.node_deregister(principal=self.principal(), node_id=node_id)
        node = selectors.node_get(principal=self.principal(), node_id=node_id)
        return Response(shapes.NodeSerializer(node).data)


# --- Activations ----------------------------------------------------------------------------


class ActivationListView(FleetAPIView):
    def get(self, request: Request) -> Response:
        activations = selectors.activation_listing(self.principal())
        paginator = FleetPagination()
        page = paginator.paginate_queryset(activations, request, view=self)
        return paginator.get_paginated_response(shapes.ActivationSerializer(page, many=True).data)

    def post(self, request: Request) -> Response:
        """Creates an activation; the code is in this response only, never again."""
        data = _valid(shapes.ActivationInput, request)
        principal = self.principal()
        activation, code = services.activation_create(principal=principal, **data)
        shown = selectors.activation_get(principal=principal, activation_id=activation.id)
        payload = {**shapes.ActivationSerializer(shown).data, "activation_code": code}
        return Response(
            payload, status=status.HTTP_201_CREATED, headers={"Cache-Control": "no-store"}
        )


class ActivationDetailView(FleetAPIView):
    def get(self, request: Request, activation_id: str) -> Response:
        activation = selectors.activation_get(
            principal=self.principal(), activation_id=activation_id
        )
        return Response(shapes.ActivationSerializer(activation).data)

    def delete(self, request: Request, activation_id: str) -> Response:
        services.activation_delete(principal=self.principal(), activation_id=activation_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Resource groups ------------------------------------------------------------------------


class ResourceGroupListView(FleetAPIView):
    def get(self, request: Request) -> Response:
        groups = selectors.resource_group_listing(self.principal())
        paginator = FleetPagination()
        page = paginator.paginate_queryset(groups, request, view=self)
        return paginator.get_paginated_response(
            shapes.ResourceGroupSerializer(page, many=True).data
        )

    def post(self, request: Request) -> Response:
        data = _valid(shapes.ResourceGroupInput, request)
        group = services.resource_group_create(principal=self.principal(), **data)
        return Response(shapes.ResourceGroupSerializer(group).data, status=status.HTTP_201_CREATED)


class ResourceGroupDetailView(FleetAPIView):
    """GET shows the group and how many nodes it holds (list them: /nodes/?group=<name>)."""

    def get(self, request: Request, name: str) -> Response:
        principal = self.principal()
        group = selectors.resource_group_get(principal=principal, name=name)
        count = selectors.tag_query_nodes(principal, group.query).count()
        return Response({**shapes.ResourceGroupSerializer(group).data, "node_count": count})

    def put(self, request: Request, name: str) -> Response:
        data = _valid(shapes.ResourceGroupUpdateInput, request)
        group = services.resource_group_update(principal=self.principal(), name=name, **data)
        return Response(shapes.ResourceGroupSerializer(group).data)

    def delete(self, request: Request, name: str) -> Response:
        services.resource_group_delete(principal=self.principal(), name=name)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Targets --------------------------------------------------------------------------------


class TargetsResolveView(FleetAPIView):
    """POST {"targets": [...], "action": "ssm:SendCommand"}: which nodes they would reach."""

    def post(self, request: Request) -> Response:
        data = _valid(shapes.TargetsInput, request)
        action = canonical_action(data["action"])
        if action is None:
            raise FleetValidationError(f'"{data["action"]}" is not a known action.')
        resolution = targets_resolve(
            principal=self.principal(), targets=data["targets"], action=action
        )
        return Response(resolution.as_dict())
