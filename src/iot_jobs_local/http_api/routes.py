"""Routes and request parsing read from botocore's own service models, not retyped.

Each operation's ``requestUri`` becomes a pattern; its input members say where each parameter
lives (path label, query string, header, JSON body) and what type to coerce a string to.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import botocore.session
from botocore.model import OperationModel, ServiceModel, Shape

from . import validation


class BadRequest(Exception):
    """The request cannot be parsed into the operation's input."""


@dataclass(frozen=True)
class Route:
    operation: OperationModel
    method: str
    pattern: re.Pattern[str]
    static_query: dict[str, str]
    #: The URI up to its first label: a cheap test before the regular expression.
    prefix: str = ""

    @property
    def name(self) -> str:
        return str(self.operation.name)


def _compile(uri: str) -> tuple[re.Pattern[str], dict[str, str]]:
    path, _, query = uri.partition("?")
    static_query: dict[str, str] = {}
    for part in filter(None, query.split("&")):
        name, _, value = part.partition("=")
        static_query[name] = value
    regex = ""
    for piece in re.split(r"(\{[^}]+\})", path):
        if piece.startswith("{"):
            label = piece[1:-1]
            if label.endswith("+"):
                regex += f"(?P<{label[:-1]}>.+)"
            else:
                regex += f"(?P<{label}>[^/]+)"
        else:
            regex += re.escape(piece)
    return re.compile(f"^{regex}\\Z"), static_query


def load_routes(service: str) -> list[Route]:
    model: ServiceModel = botocore.session.get_session().get_service_model(service)
    routes = []
    for name in model.operation_names:
        operation = model.operation_model(name)
        pattern, static_query = _compile(operation.http["requestUri"])
        prefix = operation.http["requestUri"].partition("?")[0].split("{", 1)[0]
        routes.append(Route(operation, operation.http["method"], pattern, static_query, prefix))
    # Literal paths win over labelled ones ("/things/t/jobs/$next" before "/things/t/jobs/{jobId}").
    routes.sort(key=lambda r: (r.pattern.pattern.count("(?P<"), -len(r.pattern.pattern)))
    return routes


def match(
    routes: list[Route], method: str, raw_path: str, query: dict[str, str]
) -> tuple[Route, dict[str, str]] | None:
    """Match on the raw (still percent-encoded) path, then decode each label."""
    allowed = False
    for route in routes:
        if not raw_path.startswith(route.prefix):
            continue
        found = route.pattern.match(raw_path)
        if found is None:
            continue
        if any(query.get(k) != v and not (v == "" and k in query) for k, v in route.static_query.items()):
            continue
        allowed = True
        if route.method == method:
            return route, {k: unquote(v) for k, v in found.groupdict().items()}
    if allowed:
        raise BadRequest(f"Method {method} is not allowed on {raw_path}")
    return None


def _coerce(shape: Shape, raw: str, name: str) -> Any:
    kind = shape.type_name
    if kind == "boolean":
        if raw not in ("true", "false"):
            raise BadRequest(f"{name} must be true or false")
        return raw == "true"
    if kind in ("integer", "long"):
        try:
            return int(raw)
        except ValueError:
            raise BadRequest(f"{name} must be an integer") from None
    if kind == "double":
        return float(raw)
    return raw


def parse_input(
    route: Route, labels: dict[str, str], query: dict[str, str], headers: dict[str, str], body: bytes
) -> dict[str, Any]:
    shape = route.operation.input_shape
    params: dict[str, Any] = {}
    if shape is None:
        return params
    payload: dict[str, Any] = {}
    if body.strip():
        try:
            decoded = json.loads(body)
        except ValueError:
            raise BadRequest("The request body is not valid JSON") from None
        if not isinstance(decoded, dict):
            raise BadRequest("The request body must be a JSON object")
        payload = decoded
    for member, member_shape in shape.members.items():
        location = member_shape.serialization.get("location")
        wire_name = member_shape.serialization.get("name", member)
        if location == "uri":
            if wire_name in labels:
                params[member] = _coerce(member_shape, labels[wire_name], member)
        elif location == "querystring":
            if wire_name in query:
                params[member] = _coerce(member_shape, query[wire_name], member)
        elif location == "header":
            if wire_name.lower() in headers:
                params[member] = _coerce(member_shape, headers[wire_name.lower()], member)
        elif member in payload:
            params[member] = payload[member]
    missing = [m for m in shape.required_members if m not in params]
    if missing:
        raise BadRequest(f"Missing required parameter(s): {', '.join(missing)}")
    problems = validation.problems(shape, params)
    if problems:
        raise BadRequest(validation.message(problems))
    return params


def error_status(service_model: ServiceModel, code: str, default: int) -> int:
    """The HTTP status AWS gives ``code`` in this service (ThrottlingException: 400 on iot, 429 on iot-jobs-data)."""
    try:
        shape = service_model.shape_for(code)
    except Exception:
        return default
    return int(shape.metadata.get("error", {}).get("httpStatusCode", default))
