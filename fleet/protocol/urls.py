"""The agent's HTTPS paths, mounted at `agent/v1/` (bosun_agent.protocol names them)."""

from django.urls import path

from fleet.protocol import views

app_name = "agent"

urlpatterns = [
    path("register", views.register, name="register"),
    path("heartbeat", views.heartbeat, name="heartbeat"),
    path("messages/fetch", views.fetch, name="fetch"),
    path("messages/<str:message_id>/ack", views.ack, name="ack"),
    path("messages/<str:message_id>/reply", views.reply, name="reply"),
    path("facts", views.facts, name="facts"),
    path("rotate-key", views.rotate_key, name="rotate-key"),
    path("deregister", views.deregister, name="deregister"),
]
