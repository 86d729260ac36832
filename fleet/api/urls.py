from django.urls import path

from fleet.api import views

urlpatterns = [
    path("nodes/", views.NodeListView.as_view(), name="api-nodes"),
    path("nodes/tags/", views.NodeBulkTagsView.as_view(), name="api-nodes-tags"),
    path("nodes/<str:node_id>/", views.NodeDetailView.as_view(), name="api-node"),
    path("nodes/<str:node_id>/tags/", views.NodeTagsView.as_view(), name="api-node-tags"),
    path(
        "nodes/<str:node_id>/deregister/",
        views.NodeDeregisterView.as_view(),
        name="api-node-deregister",
    ),
    path("activations/", views.ActivationListView.as_view(), name="api-activations"),
    path(
        "activations/<str:activation_id>/",
        views.ActivationDetailView.as_view(),
        name="api-activation",
    ),
    path("resource-groups/", views.ResourceGroupListView.as_view(), name="api-groups"),
    path("resource-groups/<str:name>/", views.ResourceGroupDetailView.as_view(), name="api-group"),
    path("targets/resolve", views.TargetsResolveView.as_view(), name="api-targets-resolve"),
]
