from django.urls import include, path

urlpatterns = [
    path("", include("access.urls")),
    path("audit/", include("audit.urls")),
    path("", include("web.urls")),
]

handler403 = "web.views.permission_denied"
handler404 = "web.views.page_not_found"
handler500 = "web.views.server_error"
