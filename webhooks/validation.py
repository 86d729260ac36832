"""The shape of an endpoint's name and URL, checked the same way for every face."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from webhooks.exceptions import WebhookValidationError

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
MAX_NAME = 128
MAX_URL = 2048


def name_validated(name: object) -> str:
    if not isinstance(name, str) or not name.strip():
        raise WebhookValidationError("Give the webhook a name.")
    name = name.strip()
    if len(name) > MAX_NAME:
        raise WebhookValidationError(f"A name is at most {MAX_NAME} characters.")
    if not NAME.match(name):
        raise WebhookValidationError(
            "A name starts with a letter or digit and holds letters, digits and _ . - only."
        )
    return name


def url_validated(url: object) -> str:
    """An absolute http(s) URL with a host. Single-label hosts (a container's service name)
    are fine; credentials in the URL are not: the signature is how a receiver trusts us, and
    the URL is shown on pages and kept in the audit trail."""
    if not isinstance(url, str) or not url.strip():
        raise WebhookValidationError("Give the URL the events are POSTed to.")
    url = url.strip()
    if len(url) > MAX_URL:
        raise WebhookValidationError(f"A URL is at most {MAX_URL} characters.")
    if any(char.isspace() or not char.isprintable() for char in url):
        raise WebhookValidationError("A URL cannot contain spaces or control characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise WebhookValidationError(f'"{url}" is not a valid URL.') from None
    if parts.scheme.lower() not in ("http", "https"):
        raise WebhookValidationError("The URL must start with http:// or https://.")
    if not parts.hostname:
        raise WebhookValidationError("The URL must name a host, as in https://hooks.example.com/.")
    if parts.username is not None or parts.password is not None:
        raise WebhookValidationError(
            "Leave credentials out of the URL: receivers verify the X-Bosun-Signature header."
        )
    if port == 0:
        raise WebhookValidationError("The URL's port must be 1 to 65535.")
    return url
