"""Documents and Run Command as AWS SSM operations: translate AWS's shapes to the services and
selectors and back (the REST face, commands.api, calls the very same ones).

Registered on the AWS endpoint (access.aws_endpoint) by bosun.lib.aws.registry when this
package is imported (autodiscovered as each app's `aws`); the services and selectors authorize
and audit. What Bosun does not do (S3 output, SNS notifications, CloudWatch, attachments,
document types other than Command) is refused with a message saying so, never silently
dropped.
"""

from commands.aws import documents, run_command

__all__ = ["documents", "run_command"]
