from django.contrib.auth import views as auth_views
from django.urls import path

from web import api, views

urlpatterns = [
    path("", views.home, name="home"),
    path(
        "login/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("healthz", views.healthz, name="healthz"),
    path("dashboard/worker/", views.worker_card, name="worker-card"),
    path("system-checks/", views.system_check_create, name="system-check-create"),
    path("system-checks/<int:check_id>/", views.system_check_row, name="system-check-row"),
    path("api/v1/me", api.MeView.as_view(), name="api-me"),
]
