"""The dashboard shell's JSON API (DRF)."""

from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView


class MeView(APIView):
    """Who the caller is: the cheapest authenticated read, and the `http` benchmark's target."""

    def get(self, request: Request) -> Response:
        user = request.user
        return Response(
            {
                "username": user.get_username(),
                "is_superuser": user.is_superuser,
                "last_login": user.last_login,
            }
        )
