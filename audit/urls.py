from django.urls import path

from audit import views

app_name = "audit"

urlpatterns = [
    path("", views.event_list, name="events"),
    path("<int:sequence>/", views.event_detail, name="event"),
]
