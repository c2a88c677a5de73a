"""Routes and request parsing read from botocore's own service models, not retyped.

Each operation's ``requestUri`` becomes a pattern; its input members say where each parameter
lives (path label, query string, header, JSON body) and what type to coerce a string to.
All of that is read from the model once, when the routes are loaded: a request costs a dictionary
lookup on its first path segment, a few regular expressions, and one pass over its members.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import botocore.session
from botocore.model import OperationModel, ServiceModel, Shape

from ..jobs import strict_json
from . import validation


class BadRequest(Exception):
    """The request cannot be parsed into the operation's input."""


@dataclass(frozen=True)
class Member:
    """Where one input member is read from: ``location`` is ``uri``, ``querystring``, ``header``
    or anything else for the JSON body; ``wire_name`` is lower-cased for a header."""

    name: str
    shape: Shape
    location: str | None
    wire_name: str


@dataclass(frozen=True)
class Route:
    operation: OperationModel
    method: str
    pattern: re.Pattern[str]
    static_query: dict[str, str]
    #: The URI up to its first label: a cheap test before the regular expression.
    prefix: str = ""
    #: The input shape's members, in model order, and its required ones.
    members: tuple[Member, ...] = ()
    required: tuple[str, ...] = ()
    #: The literal first segment of the path, or None if a label begins before it ends.
    first_segment: str | None = None

    @property
    def name(self) -> str:
        return str(self.operation.name)

    @functools.cached_property
    def reads_headers(self) -> bool:
        return any(m.location == "header" for m in self.members)


class RouteTable:
    """A service's routes in matching order, grouped by the literal first path segment and the
    method that can match (in the same order), and a memo of the paths matched without a query."""

    #: Distinct (method, path) pairs remembered; the memo starts afresh beyond this.
    MEMO_SIZE = 4096

    def __init__(self, routes: list[Route]) -> None:
        self.routes = routes
        self._anywhere = [r for r in routes if r.first_segment is None]
        segments = {r.first_segment for r in routes if r.first_segment is not None}
        self._by_segment = {s: [r for r in routes if r.first_segment in (s, None)] for s in segments}
        self._by_method = {
            (s, m): [r for r in candidates if r.method == m]
            for s, candidates in [*self._by_segment.items(), (None, self._anywhere)]
            for m in {r.method for r in routes}
        }
        self._memo: dict[tuple[str, str], tuple[Route, dict[str, str]] | None] = {}

    def candidates(self, raw_path: str, method: str | None = None) -> list[Route]:
        """The routes that may match, of one method if given."""
        parts = raw_path.split("/", 2)
        segment = parts[1] if len(parts) >= 2 and not parts[0] and parts[1] in self._by_segment else None
        if method is not None:
            return self._by_method.get((segment, method), [])
        return self._anywhere if segment is None else self._by_segment[segment]

    def _match(self, method: str, raw_path: str, query: dict[str, str]) -> tuple[Route, dict[str, str]] | None:
        for route in self.candidates(raw_path, method):
            labels = _labels(route, raw_path, query)
            if labels is not None:
                return route, labels
        if any(_labels(route, raw_path, query) is not None for route in self.candidates(raw_path)):
            raise BadRequest(f"Method {method} is not allowed on {raw_path}")
        return None

    def match(self, method: str, raw_path: str, query: dict[str, str]) -> tuple[Route, dict[str, str]] | None:
        """The route and its decoded labels, None if no route has this path, :class:`BadRequest`
        if only routes of other methods have it. Without a query the answer depends on the
        method and path alone: it is remembered (polling the same resource is the common case)."""
        if query:
            return self._match(method, raw_path, query)
        key = (method, raw_path)
        try:
            found = self._memo[key]
        except KeyError:
            found = self._match(method, raw_path, query)
            if len(self._memo) >= self.MEMO_SIZE:
                self._memo.clear()
            self._memo[key] = found
        return None if found is None else (found[0], dict(found[1]))


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


def _first_segment(path: str) -> str | None:
    prefix = path.split("{", 1)[0]
    if not prefix.startswith("/"):
        return None
    segment, slash, _ = prefix[1:].partition("/")
    if slash or prefix == path:
        return segment
    return None  # a label starts inside the first segment


def _members(operation: OperationModel) -> tuple[tuple[Member, ...], tuple[str, ...]]:
    shape = operation.input_shape
    if shape is None:
        return (), ()
    members = []
    for name, member_shape in shape.members.items():
        location = member_shape.serialization.get("location")
        wire_name = member_shape.serialization.get("name", name)
        members.append(Member(name, member_shape, location, wire_name.lower() if location == "header" else wire_name))
    return tuple(members), tuple(shape.required_members)


def load_routes(service: str) -> RouteTable:
    model: ServiceModel = botocore.session.get_session().get_service_model(service)
    routes = []
    for name in model.operation_names:
        operation = model.operation_model(name)
        pattern, static_query = _compile(operation.http["requestUri"])
        path = operation.http["requestUri"].partition("?")[0]
        members, required = _members(operation)
        prefix = path.split("{", 1)[0]
        method = operation.http["method"]
        routes.append(Route(operation, method, pattern, static_query, prefix, members, required, _first_segment(path)))
    # Literal paths win over labelled ones ("/things/t/jobs/$next" before "/things/t/jobs/{jobId}").
    routes.sort(key=lambda r: (r.pattern.pattern.count("(?P<"), -len(r.pattern.pattern)))
    return RouteTable(routes)


def match(table: RouteTable, method: str, raw_path: str, query: dict[str, str]) -> tuple[Route, dict[str, str]] | None:
    """Match on the raw (still percent-encoded) path, then decode each label."""
    return table.match(method, raw_path, query)


def _labels(route: Route, raw_path: str, query: dict[str, str]) -> dict[str, str] | None:
    """The route's labels, decoded, if the raw (still percent-encoded) path and query match it."""
    if not raw_path.startswith(route.prefix):
        return None
    found = route.pattern.match(raw_path)
    if found is None:
        return None
    if any(query.get(k) != v and not (v == "" and k in query) for k, v in route.static_query.items()):
        return None
    return {k: unquote(v) for k, v in found.groupdict().items()}


def _coerce(shape: Shape, raw: str, name: str) -> Any:
    kind = shape.type_name
    if kind == "boolean":
        if raw not in ("true", "false"):
            raise BadRequest(f"{name} must be true or false")
        return raw == "true"
    if kind in ("integer", "long"):
        try:
            return int(raw)  # its range is checked with the body's members (validation.problems)
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
            decoded = strict_json.loads(body)
        except ValueError as exc:
            raise BadRequest(f"The request body is not valid JSON: {exc}") from None
        if not isinstance(decoded, dict):
            raise BadRequest("The request body must be a JSON object")
        payload = decoded
    for m in route.members:
        if m.location == "uri":
            source = labels
        elif m.location == "querystring":
            source = query
        elif m.location == "header":
            source = headers
        else:
            if m.name in payload:
                params[m.name] = payload[m.name]
            continue
        if m.wire_name in source:
            params[m.name] = _coerce(m.shape, source[m.wire_name], m.name)
    missing = [m for m in route.required if m not in params]
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
