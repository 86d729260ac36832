from django.urls import path

from parameters.api import views

urlpatterns = [
    path("parameters/", views.ParameterListView.as_view(), name="api-parameters"),
    path("parameters/value/", views.ParameterValueView.as_view(), name="api-parameter-value"),
    path("parameters/values/", views.ParameterValuesView.as_view(), name="api-parameter-values"),
    path("parameters/path/", views.ParameterPathView.as_view(), name="api-parameters-path"),
    path(
        "parameters/history/",
        views.ParameterHistoryView.as_view(),
        name="api-parameter-history",
    ),
    path(
        "parameters/delete/",
        views.ParameterDeleteManyView.as_view(),
        name="api-parameters-delete",
    ),
    path("parameters/labels/", views.ParameterLabelView.as_view(), name="api-parameter-labels"),
    path(
        "parameters/labels/remove/",
        views.ParameterUnlabelView.as_view(),
        name="api-parameter-labels-remove",
    ),
    path("parameters/tags/", views.ParameterTagsView.as_view(), name="api-parameter-tags"),
    path("parameters/export/", views.ParameterExportView.as_view(), name="api-parameters-export"),
    path("parameters/import/", views.ParameterImportView.as_view(), name="api-parameters-import"),
    path(
        "parameters/notices/",
        views.ParameterNoticesView.as_view(),
        name="api-parameter-notices",
    ),
]
