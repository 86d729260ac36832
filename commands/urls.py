"""Run Command and Documents pages. Command ids are UUIDs, so the documents' and the send
pages' addresses never read as a command's."""

from django.urls import path

from commands.views import detail, document_edit, documents, history, invocation, send

app_name = "commands"

urlpatterns = [
    path("", history.command_list, name="list"),
    path("send/", send.command_send_page, name="send"),
    path("send/preview/", send.send_preview, name="send-preview"),
    path("send/nodes/", send.send_nodes, name="send-nodes"),
    path("documents/", documents.document_list, name="documents"),
    path("documents/new/", document_edit.document_create_page, name="document-create"),
    path("documents/<str:name>/", documents.document_detail, name="document"),
    path("documents/<str:name>/edit/", document_edit.document_edit_page, name="document-edit"),
    path(
        "documents/<str:name>/delete/", document_edit.document_delete_page, name="document-delete"
    ),
    path("documents/<str:name>/default/", documents.document_default, name="document-default"),
    path("documents/<str:name>/diff/", documents.document_diff, name="document-diff"),
    path("<uuid:command_id>/", detail.command_detail, name="detail"),
    path("<uuid:command_id>/cancel/", detail.command_cancel_page, name="cancel"),
    path("<uuid:command_id>/<str:node_id>/", invocation.invocation_detail, name="invocation"),
    path(
        "<uuid:command_id>/<str:node_id>/output/<int:step>/<str:stream>/",
        invocation.invocation_output,
        name="output",
    ),
]
