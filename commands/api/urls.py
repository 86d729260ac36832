"""REST API of documents and commands, mounted at /api/v1/."""

from django.urls import path

from commands.api import views

app_name = "commands-api"

COMMAND = "commands/<str:command_id>/"
INVOCATION = f"{COMMAND}invocations/<str:node_id>/"

urlpatterns = [
    path("documents/", views.DocumentListView.as_view(), name="documents"),
    path("documents/<str:name>/", views.DocumentDetailView.as_view(), name="document"),
    path(
        "documents/<str:name>/metadata/",
        views.DocumentMetadataView.as_view(),
        name="document-metadata",
    ),
    path(
        "documents/<str:name>/versions/",
        views.DocumentVersionsView.as_view(),
        name="document-versions",
    ),
    path(
        "documents/<str:name>/default-version/",
        views.DocumentDefaultVersionView.as_view(),
        name="document-default-version",
    ),
    path("commands/", views.CommandListView.as_view(), name="commands"),
    path(COMMAND, views.CommandDetailView.as_view(), name="command"),
    path(f"{COMMAND}cancel/", views.CommandCancelView.as_view(), name="command-cancel"),
    path(f"{COMMAND}invocations/", views.InvocationListView.as_view(), name="invocations"),
    path(INVOCATION, views.InvocationDetailView.as_view(), name="invocation"),
    path(f"{INVOCATION}output/", views.InvocationOutputView.as_view(), name="invocation-output"),
]
