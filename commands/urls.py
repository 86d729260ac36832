"""Run Command and Documents pages."""

app_name = "commands"

urlpatterns: list = []
