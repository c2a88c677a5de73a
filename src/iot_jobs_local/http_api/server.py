"""The HTTP front door: pick the service, match the route, run the handler, map errors.

``iot`` and ``iot-jobs-data`` share paths (``GET /things/{t}/jobs``), so the service is read from
the SigV4 credential scope in ``Authorization`` (``.../<region>/<service>/aws4_request``).
Adding an operation is adding a handler to a service's table.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import botocore.session
from aiohttp import HttpVersion11, web

from ..engine import Engine
from ..identity_errors import IdentityError
from ..jobs import errors
from . import data_handlers, iot_handlers
from .iot_handlers import Handler
from .routes import BadRequest, RouteTable, error_status, load_routes, match, parse_input
from .sigv4 import AuthFailure, Verifier

log = logging.getLogger(__name__)

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
    handlers: Mapping[str, Handler]


def _default(value: Any) -> Any:
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


class HttpApi:
    """``verifier`` checks each request's SigV4 signature; ``iot_extra`` adds ``iot`` handlers;
    ``settle`` is awaited after each successful operation (until the broker applied access changes)."""

    def __init__(
        self,
        engine: Engine,
        verifier: Verifier | None = None,
        iot_extra: Mapping[str, Handler] | None = None,
        settle: Callable[[], Awaitable[None]] | None = None,
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

    def runner(self) -> web.BaseRunner:
        """aiohttp's low-level server around :meth:`handle`, without access log.

        Every request goes to ``handle``, so an application, its router and its middleware chain
        would only cost time (~10 % of a request, see benchmarks/README.md). ``handle`` does the
        two things aiohttp's router did for the catch-all route ``/{tail:.*}`` it was mounted on.
        """
        return web.ServerRunner(web.Server(self.handle, access_log=None))

    @staticmethod
    async def _as_router_did(request: web.BaseRequest) -> None:
        """Raise what aiohttp's router answered (404 for a path ``.*`` does not match, 417 for an
        unknown ``Expect``), and send ``100 Continue`` for ``Expect: 100-continue`` as it did."""
        if "\n" in request.path:
            raise web.HTTPNotFound()
        expect = request.headers.get("Expect")
        if expect and request.version == HttpVersion11:
            if expect.lower() != "100-continue":
                raise web.HTTPExpectationFailed(text=f"Unknown Expect: {expect}")
            await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            request.writer.output_size = 0
            await request.writer.drain()

    def _service(self, request: web.BaseRequest) -> ServiceApi:
        found = _SCOPE.search(request.headers.get("Authorization", ""))
        name = found.group(1) if found else "iot"
        return self._services.get(name, self._services["iot"])

    async def handle(self, request: web.BaseRequest) -> web.Response:
        await self._as_router_did(request)
        request_id = str(uuid.uuid4())
        service = self._service(request)
        try:
            body = await request.read()
            if self._verifier is not None:
                path, _, raw_query = request.raw_path.partition("?")
                self._verifier.verify(request.method, path, raw_query, lambda h: request.headers.getall(h, []), body)
            query = {k: v for k, v in request.query.items()}
            found = match(service.routes, request.method, request.raw_path.split("?", 1)[0], query)
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
            headers = {k.lower(): v for k, v in request.headers.items()} if route.reads_headers else {}
            params = parse_input(route, labels, query, headers, body)
            result = handler(self._engine, params)
            if self._settle is not None:
                await self._settle()
        except AuthFailure as exc:
            return self._error(service, request_id, exc.code, exc.message, 403)
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
            log.exception("internal error on %s %s", request.method, request.path)
            return self._error(service, request_id, "InternalFailureException", "Internal failure", 500)
        text = json.dumps(result, default=_default) if result else ""
        return web.Response(
            status=200, text=text, content_type="application/json", headers={"x-amzn-RequestId": request_id}
        )

    def _error(
        self,
        service: ServiceApi,
        request_id: str,
        code: str,
        message: str,
        default: int,
        extra: dict[str, Any] | None = None,
    ) -> web.Response:
        status = error_status(self._models[service.name], code, default)
        body = {"message": message, **(extra or {})}
        return web.Response(
            status=status,
            text=json.dumps(body),
            content_type="application/json",
            headers={"x-amzn-RequestId": request_id, "x-amzn-ErrorType": code},
        )
