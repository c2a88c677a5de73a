"""The HTTP front door: pick the service, match the route, run the handler, map errors.

``iot`` and ``iot-jobs-data`` share paths (``GET /things/{t}/jobs``), so the service is read from
the SigV4 credential scope in ``Authorization`` (``.../<region>/<service>/aws4_request``).
Adding an operation is adding a handler to a service's table.
"""

from __future__ import annotations

import inspect
import json
import logging
import re
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import Any

import botocore.session

from ..engine import Engine
from ..engine.uuids import random_uuid
from ..identity.errors import IdentityError
from ..jobs import errors
from . import data_handlers, iot_handlers
from .handler import LaterHandler
from .http11 import HttpServer, Reply, Request, Settle
from .routes import BadRequest, RouteTable, error_status, load_routes, match, parse_input
from .sigv4 import AuthFailure, Verifier

log = logging.getLogger(__name__)

_JSON = "application/json"
_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request")

#: One table from domain failure to the HTTP API's exception code.
ERROR_CODES: dict[type[errors.JobsError], str] = {
    errors.InvalidRequest: "InvalidRequestException",
    errors.ResourceNotFound: "ResourceNotFoundException",
    errors.ResourceAlreadyExists: "ResourceAlreadyExistsException",
    errors.InvalidStateTransition: "InvalidStateTransitionException",
    errors.VersionMismatch: "VersionConflictException",
    errors.LimitExceeded: "LimitExceededException",
    errors.Conflict: "ConflictException",
}


@dataclass
class ServiceApi:
    name: str
    routes: RouteTable
    handlers: Mapping[str, LaterHandler]


def _default(value: Any) -> Any:
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


_ENCODER = json.JSONEncoder(default=_default, allow_nan=False)  # a reply is always JSON


class HttpApi:
    """``verifier`` checks each request's SigV4 signature; ``iot_extra`` adds ``iot`` handlers;
    ``settle`` is awaited after each successful operation, before its response is sent (until the
    broker applied access changes)."""

    def __init__(
        self,
        engine: Engine,
        verifier: Verifier | None = None,
        iot_extra: Mapping[str, LaterHandler] | None = None,
        settle: Settle | None = None,
    ) -> None:
        self._engine = engine
        self._verifier = verifier
        self._settle = settle
        session = botocore.session.get_session()
        self._models = {name: session.get_service_model(name) for name in ("iot", "iot-jobs-data")}
        self._services = {
            "iot": ServiceApi("iot", load_routes("iot"), {**iot_handlers.HANDLERS, **(iot_extra or {})}),
            "iot-jobs-data": ServiceApi("iot-jobs-data", load_routes("iot-jobs-data"), data_handlers.HANDLERS),
        }

    def server(self) -> HttpServer:
        """The HTTP/1.1 server that answers with :meth:`respond`."""
        return HttpServer(self.respond, self._settle)

    def _service(self, request: Request) -> ServiceApi:
        found = _SCOPE.search(request.headers.get("Authorization"))
        return self._named(found.group(1) if found else "iot")

    def _named(self, name: str) -> ServiceApi:
        return self._services.get(name) or self._services["iot"]

    def operation_name(self, request: Request) -> str:
        """The API operation a request asks for (``CreateJob``), else its method and path; for logs."""
        path, _, raw_query = request.target.partition("?")
        try:
            found = match(self._service(request).routes, request.method, path, request.query() if raw_query else {})
        except Exception:  # a malformed query: the response says what was wrong with it
            found = None
        return found[0].name if found else f"{request.method} {path}"

    def respond(self, request: Request) -> Reply:
        request_id = random_uuid()
        path, _, raw_query = request.target.partition("?")
        body = request.body
        service = self._services["iot"]  # until the request says which
        try:
            if self._verifier is None:
                service = self._service(request)
            else:
                caller = self._verifier.verify(request.method, path, raw_query, request.headers.values, body)
                service = self._named(caller.service)  # the credential scope, already parsed
            query = request.query() if raw_query else {}
            found = match(service.routes, request.method, path, query)
            if found is None:
                return self._error(service, request_id, "ResourceNotFoundException", "No such resource", 404)
            route, labels = found
            handler = service.handlers.get(route.name)
            if handler is None:
                return self._error(
                    service,
                    request_id,
                    "NotImplementedException",
                    f"{route.name} is not implemented by iot-jobs-local",
                    501,
                )
            headers = request.headers.lower_items() if route.reads_headers else {}
            params = parse_input(route, labels, query, headers, body)
            result = handler(self._engine, params)
        except Exception as exc:
            return self._failure(request, service, request_id, exc)
        if inspect.isawaitable(result):
            return Reply(200, later=self._finish(request, service, request_id, result))
        return self._success(request_id, result)

    async def _finish(
        self, request: Request, service: ServiceApi, request_id: str, result: Awaitable[dict[str, Any]]
    ) -> Reply:
        try:
            return self._success(request_id, await result)
        except Exception as exc:
            return self._failure(request, service, request_id, exc)

    def _success(self, request_id: str, result: dict[str, Any]) -> Reply:
        text = _ENCODER.encode(result).encode() if result else b""
        return Reply(
            200,
            text,
            [("Content-Type", _JSON), ("x-amzn-RequestId", request_id)],
            settle=self._settle is not None,
        )

    def _failure(self, request: Request, service: ServiceApi, request_id: str, failure: Exception) -> Reply:
        """The error reply for what a handler (or the parsing before it) raised."""
        try:
            raise failure
        except AuthFailure as exc:
            return self._error(self._service(request), request_id, exc.code, exc.message, 403)
        except IdentityError as exc:
            return self._error(service, request_id, exc.code, exc.message, 400, exc.extra or None)
        except BadRequest as exc:
            return self._error(service, request_id, "InvalidRequestException", str(exc), 400)
        except errors.ResourceAlreadyExists as exc:
            extra = {"resourceId": exc.resource_id, "resourceArn": exc.resource_arn}
            return self._error(service, request_id, "ResourceAlreadyExistsException", exc.message, 409, extra)
        except errors.JobsError as exc:
            return self._error(service, request_id, ERROR_CODES[type(exc)], exc.message, 400)
        except Exception:  # the service never dies on a bad request
            log.exception("internal error on %s %s", request.method, request.raw_path)
            return self._error(service, request_id, "InternalFailureException", "Internal failure", 500)

    def _error(
        self,
        service: ServiceApi,
        request_id: str,
        code: str,
        message: str,
        default: int,
        extra: dict[str, Any] | None = None,
    ) -> Reply:
        status = error_status(self._models[service.name], code, default)
        body = {"message": message, **(extra or {})}
        return Reply(
            status,
            _ENCODER.encode(body).encode(),
            [("Content-Type", _JSON), ("x-amzn-RequestId", request_id), ("x-amzn-ErrorType", code)],
        )
