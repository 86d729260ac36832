"""The client's address behind Bosun's reverse proxy.

gunicorn reports the proxy as the peer, so without this every request of the `web` role would
come from 127.0.0.1: audit events and `aws:SourceIp` conditions need the real client. Only
installed with BOSUN_SECURE_PROXY=1, when a proxy we run sets X-Forwarded-For (deploy/nginx
sets it to the peer address rather than appending, so a client cannot plant its own); the last
entry is the one our proxy wrote in either case.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse


class ForwardedForMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded:
            client = forwarded.split(",")[-1].strip()
            try:
                ipaddress.ip_address(client)
            except ValueError:
                pass  # a malformed header changes nothing
            else:
                request.META["REMOTE_ADDR"] = client
        return self.get_response(request)
