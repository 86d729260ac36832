"""Bosun's IAM policy engine: pure Python, no Django, so every face can afford to call it.

`parse_policy` validates a document in IAM's shape and compiles it once into an immutable
`Policy` (identical documents share one compiled instance); `evaluate` decides one request
against a principal's policies. Statement indexes, in errors and decisions alike, count from 0
as in the document's `Statement` list. A request for an action that names no resource passes
`resource="*"`, which only statements with `Resource: "*"` (or NotResource) match, as in IAM.
"""

from access.policy.actions import KNOWN_ACTIONS, action_matches, canonical_action
from access.policy.document import Policy, parse_policy
from access.policy.errors import PolicyError
from access.policy.evaluate import Decision, evaluate

__all__ = [
    "KNOWN_ACTIONS",
    "Decision",
    "Policy",
    "PolicyError",
    "action_matches",
    "canonical_action",
    "evaluate",
    "parse_policy",
]
