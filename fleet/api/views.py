"""Fleet API endpoints: adapt JSON to the services and selectors the pages use too."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
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


# --- OpenAPI shapes (the views build these responses by hand) -------------------------------

TAG = "Fleet"


def _page_of(name: str, item: serializers.Serializer, **more: serializers.Field) -> object:
    return inline_serializer(
        name=name,
        fields={
            "count": serializers.IntegerField(),
            "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True),
            "results": item,
            **more,
        },
    )


_PAGE_PARAMETERS = [
    OpenApiParameter("page", OpenApiTypes.INT),
    OpenApiParameter("page_size", OpenApiTypes.INT),
]
_NODE_FILTERS = [
    OpenApiParameter("tag", OpenApiTypes.STR, many=True, description="Key or Key=Value"),
    *(
        OpenApiParameter(name, OpenApiTypes.STR)
        for name in ("q", "status", "platform", "group", "sort")
    ),
]
_NODE_TAGS = inline_serializer(
    name="NodeTags",
    fields={
        "id": serializers.CharField(),
        "tags": serializers.DictField(child=serializers.CharField()),
    },
)


# --- Nodes ----------------------------------------------------------------------------------


class NodeListView(FleetAPIView):
    """GET: the nodes the caller may see, with the Fleet Manager page's filters."""

    @extend_schema(
        tags=[TAG],
        operation_id="nodes_list",
        parameters=[*_NODE_FILTERS, *_PAGE_PARAMETERS],
        responses=_page_of(
            "PaginatedNodeList",
            shapes.NodeSerializer(many=True),
            counts=serializers.DictField(child=serializers.IntegerField()),
        ),
    )
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
    @extend_schema(tags=[TAG], responses=shapes.NodeDetailSerializer)
    def get(self, request: Request, node_id: str) -> Response:
        node = selectors.node_get(principal=self.principal(), node_id=node_id)
        return Response(shapes.NodeDetailSerializer(node).data)


class NodeTagsView(FleetAPIView):
    """POST adds (or overwrites) tags; DELETE removes tag keys (body `keys`, or `?key=`)."""

    @extend_schema(tags=[TAG], request=shapes.TagsInput, responses=_NODE_TAGS)
    def post(self, request: Request, node_id: str) -> Response:
        data = _valid(shapes.TagsInput, request)
        tags = services.node_tags_add(
            principal=self.principal(), node_id=node_id, tags=data["tags"]
        )
        return Response({"id": node_id, "tags": tags})

    @extend_schema(
        tags=[TAG],
        parameters=[OpenApiParameter("key", OpenApiTypes.STR, many=True)],
        request=shapes.TagKeysInput,
        responses=_NODE_TAGS,
    )
    def delete(self, request: Request, node_id: str) -> Response:
        keys = request.query_params.getlist("key")
        if not keys:
            keys = _valid(shapes.TagKeysInput, request)["keys"]
        tags = services.node_tags_remove(principal=self.principal(), node_id=node_id, keys=keys)
        return Response({"id": node_id, "tags": tags})


class NodeBulkTagsView(FleetAPIView):
    """POST {"node_ids": [...], "add": {...}} or {"node_ids": [...], "remove": [keys]}."""

    @extend_schema(
        tags=[TAG],
        operation_id="nodes_tags_bulk_edit",
        request=shapes.BulkTagsInput,
        responses=inline_serializer(
            name="NodeBulkTagsResult",
            fields={
                "changed": serializers.ListField(child=serializers.CharField()),
                "refused": serializers.ListField(child=serializers.CharField()),
                "skipped": serializers.DictField(child=serializers.CharField()),
            },
        ),
    )
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
    @extend_schema(tags=[TAG], request=None, responses=shapes.NodeSerializer)
    def post(self, request: Request, node_id: str) -> Response:
        services.node_deregister(principal=self.principal(), node_id=node_id)
        node = selectors.node_get(principal=self.principal(), node_id=node_id)
        return Response(shapes.NodeSerializer(node).data)


# --- Activations ----------------------------------------------------------------------------


class ActivationListView(FleetAPIView):
    @extend_schema(
        tags=[TAG],
        operation_id="activations_list",
        parameters=_PAGE_PARAMETERS,
        responses=_page_of("PaginatedActivationList", shapes.ActivationSerializer(many=True)),
    )
    def get(self, request: Request) -> Response:
        activations = selectors.activation_listing(self.principal())
        paginator = FleetPagination()
        page = paginator.paginate_queryset(activations, request, view=self)
        return paginator.get_paginated_response(shapes.ActivationSerializer(page, many=True).data)

    @extend_schema(
        tags=[TAG],
        request=shapes.ActivationInput,
        responses={
            201: inline_serializer(
                name="ActivationWithCode",
                fields={
                    **shapes.ActivationSerializer().get_fields(),
                    "activation_code": serializers.CharField(),
                },
            )
        },
    )
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
    @extend_schema(tags=[TAG], responses=shapes.ActivationSerializer)
    def get(self, request: Request, activation_id: str) -> Response:
        activation = selectors.activation_get(
            principal=self.principal(), activation_id=activation_id
        )
        return Response(shapes.ActivationSerializer(activation).data)

    @extend_schema(tags=[TAG], responses={204: None})
    def delete(self, request: Request, activation_id: str) -> Response:
        services.activation_delete(principal=self.principal(), activation_id=activation_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Resource groups ------------------------------------------------------------------------


class ResourceGroupListView(FleetAPIView):
    @extend_schema(
        tags=[TAG],
        operation_id="resource_groups_list",
        parameters=_PAGE_PARAMETERS,
        responses=_page_of("PaginatedResourceGroupList", shapes.ResourceGroupSerializer(many=True)),
    )
    def get(self, request: Request) -> Response:
        groups = selectors.resource_group_listing(self.principal())
        paginator = FleetPagination()
        page = paginator.paginate_queryset(groups, request, view=self)
        return paginator.get_paginated_response(
            shapes.ResourceGroupSerializer(page, many=True).data
        )

    @extend_schema(
        tags=[TAG],
        request=shapes.ResourceGroupInput,
        responses={201: shapes.ResourceGroupSerializer},
    )
    def post(self, request: Request) -> Response:
        data = _valid(shapes.ResourceGroupInput, request)
        group = services.resource_group_create(principal=self.principal(), **data)
        return Response(shapes.ResourceGroupSerializer(group).data, status=status.HTTP_201_CREATED)


class ResourceGroupDetailView(FleetAPIView):
    """GET shows the group and how many nodes it holds (list them: /nodes/?group=<name>)."""

    @extend_schema(
        tags=[TAG],
        responses=inline_serializer(
            name="ResourceGroupWithCount",
            fields={
                **shapes.ResourceGroupSerializer().get_fields(),
                "node_count": serializers.IntegerField(),
            },
        ),
    )
    def get(self, request: Request, name: str) -> Response:
        principal = self.principal()
        group = selectors.resource_group_get(principal=principal, name=name)
        count = selectors.tag_query_nodes(principal, group.query).count()
        return Response({**shapes.ResourceGroupSerializer(group).data, "node_count": count})

    @extend_schema(
        tags=[TAG],
        request=shapes.ResourceGroupUpdateInput,
        responses=shapes.ResourceGroupSerializer,
    )
    def put(self, request: Request, name: str) -> Response:
        data = _valid(shapes.ResourceGroupUpdateInput, request)
        group = services.resource_group_update(principal=self.principal(), name=name, **data)
        return Response(shapes.ResourceGroupSerializer(group).data)

    @extend_schema(tags=[TAG], responses={204: None})
    def delete(self, request: Request, name: str) -> Response:
        services.resource_group_delete(principal=self.principal(), name=name)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Targets --------------------------------------------------------------------------------


class TargetsResolveView(FleetAPIView):
    """POST {"targets": [...], "action": "ssm:SendCommand"}: which nodes they would reach."""

    @extend_schema(
        tags=[TAG],
        request=shapes.TargetsInput,
        responses=OpenApiTypes.OBJECT,
        description="The resolution: InstanceIds, Online and the other counts, AWS-cased.",
    )
    def post(self, request: Request) -> Response:
        data = _valid(shapes.TargetsInput, request)
        action = canonical_action(data["action"])
        if action is None:
            raise FleetValidationError(f'"{data["action"]}" is not a known action.')
        resolution = targets_resolve(
            principal=self.principal(), targets=data["targets"], action=action
        )
        return Response(resolution.as_dict())
