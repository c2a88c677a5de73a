"""Failures of the identity operations (certificates, policies, principals), one class per AWS code.

These surface only on the ``iot`` HTTP API, so each class is named after the exception code AWS
returns and carries it; the HTTP layer reads ``code`` and ``extra`` and takes the status from the
botocore model (CertificateStateException 406, DeleteConflictException 409, ...).
"""

from __future__ import annotations

from typing import Any


class IdentityError(Exception):
    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra

    @property
    def code(self) -> str:
        return type(self).__name__


class InvalidRequestException(IdentityError):
    pass


class ResourceNotFoundException(IdentityError):
    pass


class ResourceAlreadyExistsException(IdentityError):
    def __init__(self, message: str, resource_id: str, resource_arn: str) -> None:
        super().__init__(message, resourceId=resource_id, resourceArn=resource_arn)


class CertificateStateException(IdentityError):
    pass


class DeleteConflictException(IdentityError):
    pass


class MalformedPolicyException(IdentityError):
    pass


class VersionsLimitExceededException(IdentityError):
    pass


class LimitExceededException(IdentityError):
    pass


class CertificateValidationException(IdentityError):
    pass
