"""Parameter Store pages. Names hold slashes, so every page about one parameter takes it as
`?name=` (or a posted field), never as a path segment."""

from django.urls import path

from parameters.views import browse, detail, diff, edit, tagging, transfer

app_name = "parameters"

urlpatterns = [
    path("", browse.parameter_list, name="list"),
    path("folders/", browse.folder_children, name="folders"),
    path("new/", edit.parameter_create, name="create"),
    path("edit/", edit.parameter_edit, name="edit"),
    path("detail/", detail.parameter_detail, name="detail"),
    path("detail/value/", detail.parameter_value, name="value"),
    path("detail/history/", detail.parameter_history, name="history"),
    path("reveal/", detail.parameter_reveal, name="reveal"),
    path("diff/", diff.parameter_diff, name="diff"),
    path("delete/", detail.parameter_delete, name="delete"),
    path("tags/", tagging.tags_add, name="tags-add"),
    path("tags/remove/", tagging.tag_remove, name="tag-remove"),
    path("labels/", tagging.label_attach, name="label-attach"),
    path("labels/remove/", tagging.label_remove, name="label-remove"),
    path("export/", transfer.parameters_export, name="export"),
    path("import/", transfer.parameters_import, name="import"),
]
