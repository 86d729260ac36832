from django.urls import path

from fleet.views import activations, groups, node_detail, nodes

app_name = "fleet"

urlpatterns = [
    path("", nodes.node_list, name="nodes"),
    path("counts/", nodes.node_counts, name="node-counts"),
    path("tags/", nodes.node_bulk_tags, name="bulk-tags"),
    path("nodes/<str:node_id>/", node_detail.node_detail, name="node"),
    path("nodes/<str:node_id>/row/", nodes.node_row, name="node-row"),
    path("nodes/<str:node_id>/overview/", node_detail.node_overview, name="node-overview"),
    path("nodes/<str:node_id>/events/", node_detail.node_timeline, name="node-events"),
    path("nodes/<str:node_id>/tags/", node_detail.node_tags_add, name="node-tags-add"),
    path("nodes/<str:node_id>/tags/remove/", node_detail.node_tag_remove, name="node-tag-remove"),
    path("nodes/<str:node_id>/deregister/", node_detail.node_deregister, name="node-deregister"),
    path("nodes/<str:node_id>/clear-alert/", node_detail.node_clear_alert, name="node-clear-alert"),
    path("nodes/<str:node_id>/refresh-facts/", node_detail.node_refresh_facts, name="node-refresh"),
    path("nodes/<str:node_id>/rotate-key/", node_detail.node_rotate_key, name="node-rotate-key"),
    path("activations/", activations.activation_list, name="activations"),
    path("activations/new/", activations.activation_create, name="activation-create"),
    path("activations/<str:activation_id>/", activations.activation_detail, name="activation"),
    path(
        "activations/<str:activation_id>/delete/",
        activations.activation_delete,
        name="activation-delete",
    ),
    path("groups/", groups.group_list, name="groups"),
    path("groups/new/", groups.group_create, name="group-create"),
    path("groups/preview/", groups.group_preview, name="group-preview"),
    path("groups/<str:name>/", groups.group_detail, name="group"),
    path("groups/<str:name>/edit/", groups.group_edit, name="group-edit"),
    path("groups/<str:name>/delete/", groups.group_delete, name="group-delete"),
]
