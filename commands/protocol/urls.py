"""Run Command's agent paths, mounted beside fleet's at `agent/v1/`."""

from django.urls import path

from commands.protocol import views

app_name = "agent_commands"

urlpatterns = [
    path("messages/<str:message_id>/output", views.output, name="output"),
    path("commands/secure-parameters", views.secure_parameters, name="secure-parameters"),
]
