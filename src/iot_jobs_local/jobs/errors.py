"""Domain failures, one class per kind. Each adapter maps them to its own AWS code in one table."""

from __future__ import annotations

from .model import Execution


class JobsError(Exception):
    """Base of every failure the domain reports to a client."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequest(JobsError):
    """The request is malformed or violates a documented limit."""


class ResourceNotFound(JobsError):
    """No such job, thing or execution."""


class ResourceAlreadyExists(JobsError):
    def __init__(self, message: str, resource_id: str, resource_arn: str) -> None:
        super().__init__(message)
        self.resource_id = resource_id
        self.resource_arn = resource_arn


class InvalidStateTransition(JobsError):
    """The execution (or job) cannot move to the requested state from where it is."""

    def __init__(self, message: str, execution: Execution | None = None) -> None:
        super().__init__(message)
        self.execution = execution


class VersionMismatch(JobsError):
    """``expectedVersion`` does not match the current version (of an execution, a thing or a group)."""

    def __init__(self, message: str, execution: Execution | None = None) -> None:
        super().__init__(message)
        self.execution = execution


class Conflict(JobsError):
    """A resource with this id already exists (CreateJobTemplate's ConflictException)."""

    def __init__(self, message: str, resource_id: str) -> None:
        super().__init__(message)
        self.resource_id = resource_id


class LimitExceeded(JobsError):
    """A quota of the service would be exceeded."""
