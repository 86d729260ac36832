"""REST API of documents and commands (filled in by the API module)."""

app_name = "commands-api"

urlpatterns: list = []
