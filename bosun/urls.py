from django.urls import include, path

urlpatterns = [
    path("", include("access.urls")),
    path("audit/", include("audit.urls")),
    path("agent/v1/", include("fleet.protocol.urls")),
    path("agent/v1/", include("commands.protocol.urls")),
    path("fleet/", include("fleet.urls")),
    path("api/v1/", include("fleet.api.urls")),
    path("api/v1/", include("parameters.api.urls")),
    path("api/v1/", include("webhooks.api.urls")),
    path("api/v1/", include("commands.api.urls")),
    path("api/", include("bosun.api_schema_urls")),
    path("parameters/", include("parameters.urls")),
    path("webhooks/", include("webhooks.urls")),
    path("commands/", include("commands.urls")),
    path("sessions/", include("sessions.urls")),
    path("", include("web.urls")),
]

handler403 = "web.views.permission_denied"
handler404 = "web.views.page_not_found"
handler500 = "web.views.server_error"
