"""The one error type the console reports: an operation name, an AWS-style code and a message."""

from __future__ import annotations


class IotJobsError(Exception):
    def __init__(self, message: str, code: str | None = None, operation: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.operation = operation

    def line(self) -> str:
        """The single line shown to the user."""
        head = f"{self.operation} failed: " if self.operation else "Error: "
        return head + (f"{self.code}: {self.message}" if self.code else self.message)


class UsageError(IotJobsError):
    """A command typed wrongly: unknown name, wrong argument count, bad argument."""
