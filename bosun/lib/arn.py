"""Amazon Resource Names for Bosun's resources, in this installation's region and account."""

from __future__ import annotations

from django.conf import settings


def arn(service: str, resource: str, *, region: str | None = None) -> str:
    """`arn:aws:<service>:<region>:<account>:<resource>`, e.g. ("ssm", "parameter/app/db").

    Global services name no region: pass region="" (IAM ARNs are `arn:aws:iam::<account>:…`).
    """
    config = settings.BOSUN
    region = config.region if region is None else region
    return f"arn:aws:{service}:{region}:{config.account_id}:{resource}"


def iam_arn(resource: str) -> str:
    """An IAM ARN (users, groups, policies): IAM is global, so it names no region."""
    return arn("iam", resource, region="")
