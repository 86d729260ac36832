from django.urls import path

from webhooks import views

app_name = "webhooks"

urlpatterns = [
    path("", views.endpoint_list, name="endpoints"),
    path("new/", views.endpoint_create, name="create"),
    path("<int:endpoint_id>/", views.endpoint_detail, name="endpoint"),
    path("<int:endpoint_id>/edit/", views.endpoint_edit, name="edit"),
    path("<int:endpoint_id>/delete/", views.endpoint_delete, name="delete"),
    path("<int:endpoint_id>/test/", views.endpoint_test, name="test"),
    path(
        "<int:endpoint_id>/deliveries/<uuid:delivery_id>/retry/",
        views.delivery_retry,
        name="retry",
    ),
]
