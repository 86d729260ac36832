"""The one error a policy document can raise, located at the statement and field at fault."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


class PolicyError(ValueError):
    """A policy document that cannot be accepted.

    `statement` is the 0-based index into `Statement` (a lone statement object is index 0),
    `sid` its Sid when it has one, `field` the element at fault (`Action`, `Resource`,
    `Condition`, ...). Document-level errors leave `statement` as None. `code` is IAM's error
    code for the refusal: `MalformedPolicyDocument`, or `LimitExceeded` for a policy too large.
    """

    def __init__(
        self,
        message: str,
        *,
        statement: int | None = None,
        sid: str | None = None,
        field: str | None = None,
        code: str = "MalformedPolicyDocument",
    ) -> None:
        self.message = message
        self.statement = statement
        self.sid = sid
        self.field = field
        self.code = code
        super().__init__(str(self))

    def __str__(self) -> str:
        prefix = ""
        if self.statement is not None:
            prefix = f"Statement {self.statement}"
            if self.sid:
                prefix += f' (Sid "{self.sid}")'
            prefix += ": "
        if self.field:
            prefix += f"{self.field}: "
        return prefix + self.message


@contextmanager
def located(
    *, statement: int | None = None, sid: str | None = None, field: str | None = None
) -> Iterator[None]:
    """Fill in where an error raised below happened, keeping what it already says."""
    try:
        yield
    except PolicyError as error:
        raise PolicyError(
            error.message,
            statement=error.statement if error.statement is not None else statement,
            sid=error.sid or sid,
            field=error.field or field,
            code=error.code,
        ) from None


def json_type(value: object) -> str:
    """How a JSON value's type reads in an error message."""
    names = {str: "a string", dict: "an object", list: "a list", bool: "a boolean"}
    return "null" if value is None else names.get(type(value), "a number")
