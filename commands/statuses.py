"""The fine statuses (AWS's StatusDetails) and which of them count as errors."""

from __future__ import annotations

from django.db.models import Q

from commands.models import InvocationStatus

PENDING = "Pending"
IN_PROGRESS = "InProgress"
DELAYED = "Delayed"
SUCCESS = "Success"
FAILED = "Failed"
EXECUTION_TIMED_OUT = "ExecutionTimedOut"
DELIVERY_TIMED_OUT = "DeliveryTimedOut"
CANCELLING = "Cancelling"
CANCELLED = "Cancelled"
UNDELIVERABLE = "Undeliverable"
TERMINATED = "Terminated"  # not sent: the command's errors passed MaxErrors
INCOMPLETE = "Incomplete"  # a command: done, not all succeeded, errors within MaxErrors

# Errors, as AWS counts them against MaxErrors: failures and execution timeouts. Delivery
# timeouts and undeliverable nodes are reported apart and do not stop the command.
ERROR_Q = Q(status=InvocationStatus.FAILED) & ~Q(status_details=UNDELIVERABLE) | Q(
    status_details=EXECUTION_TIMED_OUT
)
