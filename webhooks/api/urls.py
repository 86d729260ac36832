from django.urls import path

from webhooks.api import views

urlpatterns = [
    path("webhooks/", views.WebhookListView.as_view(), name="api-webhooks"),
    path("webhooks/<int:endpoint_id>/", views.WebhookDetailView.as_view(), name="api-webhook"),
    path(
        "webhooks/<int:endpoint_id>/deliveries/",
        views.WebhookDeliveryListView.as_view(),
        name="api-webhook-deliveries",
    ),
    path(
        "webhooks/<int:endpoint_id>/deliveries/<uuid:delivery_id>/retry/",
        views.WebhookDeliveryRetryView.as_view(),
        name="api-webhook-delivery-retry",
    ),
    path(
        "webhooks/<int:endpoint_id>/test/",
        views.WebhookTestView.as_view(),
        name="api-webhook-test",
    ),
]
