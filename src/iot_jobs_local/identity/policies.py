"""AWS IoT policy documents: parse and validate them, and evaluate one action on one resource.

A document is ``{"Version": "2012-10-17", "Statement": [...]}``; each statement has ``Effect``
(Allow/Deny), ``Action`` and ``Resource`` (a string or a list) and an optional ``Condition``.
Resources are ARNs where ``*`` matches any run of characters (``/`` included) and ``?`` exactly
one; ``${...}`` is a policy variable, ``${*}``, ``${?}`` and ``${$}`` the literal characters.
Actions match case-insensitively, with the same wildcards.

Evaluation is AWS's: a matching Deny wins, otherwise a matching Allow grants, otherwise denied.
A resource whose variable cannot be resolved matches nothing. Conditions: only
``Bool {"iot:Connection.Thing.IsAttached": ...}`` is understood; a statement with any other
condition never grants (Allow) and always applies (Deny), the safe reading of "unknown".
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from ..jobs import strict_json
from .errors import MalformedPolicyException

VERSIONS = ("2012-10-17", "2008-10-17")
IS_ATTACHED = "iot:Connection.Thing.IsAttached"
CLIENT_ID = "iot:ClientId"
THING_NAME = "iot:Connection.Thing.ThingName"

#: A resource is a sequence of tokens: a one-character string is that literal character,
#: ``STAR`` and ``ONE`` are the wildcards (two characters long, so never mistaken for a literal).
STAR = "**"
ONE = "??"
Tokens = tuple[str, ...]
#: A variable value standing for "any value" (a ``*``); MQTT strings cannot contain U+0000.
ANY_VALUE = "\x00*"

_STATEMENT_KEYS = {"Sid", "Effect", "Action", "Resource", "Condition"}
_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_ESCAPES = {"*": "*", "?": "?", "$": "$"}
#: For the broker's ACL compiler, which matches resources with their variables left in place.
VARIABLE, ESCAPES = _VARIABLE, _ESCAPES


@dataclass(frozen=True)
class Statement:
    effect: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    condition: Mapping[str, Any] | None = None

    @property
    def allows(self) -> bool:
        return self.effect == "Allow"


@dataclass(frozen=True)
class Facts:
    """What conditions may ask about the connection being evaluated."""

    is_attached: bool


def _strings(value: Any, what: str) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(i, str) and i for i in items):
        raise MalformedPolicyException(f"Policy document is malformed: {what} must be a non-empty string or list")
    return tuple(items)


def _statement(raw: Any) -> Statement:
    if not isinstance(raw, dict):
        raise MalformedPolicyException("Policy document is malformed: each Statement must be an object")
    unknown = set(raw) - _STATEMENT_KEYS
    if unknown:
        raise MalformedPolicyException(f"Policy document is malformed: unsupported element(s) {sorted(unknown)}")
    if raw.get("Effect") not in ("Allow", "Deny"):
        raise MalformedPolicyException("Policy document is malformed: Effect must be Allow or Deny")
    actions = _strings(raw.get("Action"), "Action")
    for action in actions:
        if action != "*" and ":" not in action:
            raise MalformedPolicyException(f"Policy document is malformed: invalid action {action!r}")
    resources = _strings(raw.get("Resource"), "Resource")
    for resource in resources:
        if resource != "*" and not resource.startswith("arn:"):
            raise MalformedPolicyException(f"Policy document is malformed: invalid resource {resource!r}")
    condition = raw.get("Condition")
    if condition is not None and not isinstance(condition, dict):
        raise MalformedPolicyException("Policy document is malformed: Condition must be an object")
    return Statement(raw["Effect"], actions, resources, condition)


def parse(document: str) -> tuple[Statement, ...]:
    """The statements of a policy document, or MalformedPolicyException.

    AWS also limits a document to 2048 characters without white space; that quota is not
    enforced here (the default device policy, filled in for a long region name, would exceed it).
    """
    return _parse(document)


@lru_cache(maxsize=1024)
def _parse(document: str) -> tuple[Statement, ...]:
    try:
        decoded = strict_json.loads(document)
    except ValueError:
        raise MalformedPolicyException("Policy document is not valid JSON") from None
    if not isinstance(decoded, dict):
        raise MalformedPolicyException("Policy document must be a JSON object")
    unknown = set(decoded) - {"Version", "Statement", "Id"}
    if unknown:
        raise MalformedPolicyException(f"Policy document is malformed: unsupported element(s) {sorted(unknown)}")
    if "Version" in decoded and decoded["Version"] not in VERSIONS:
        raise MalformedPolicyException(f"Policy document is malformed: unsupported Version {decoded['Version']!r}")
    raw = decoded.get("Statement")
    statements = [raw] if isinstance(raw, dict) else raw
    if not isinstance(statements, list) or not statements:
        raise MalformedPolicyException("Policy document is malformed: Statement is missing or empty")
    return tuple(_statement(s) for s in statements)


# resources -------------------------------------------------------------------------------------
def variables_of(resource: str) -> set[str]:
    return {name for name in _VARIABLE.findall(resource) if name not in _ESCAPES}


def tokens(resource: str, variables: Mapping[str, str]) -> Tokens | None:
    """The resource with its variables replaced, as tokens; None if a variable is unresolved."""
    out: list[str] = []
    position = 0
    for found in _VARIABLE.finditer(resource):
        out += _glob_tokens(resource[position : found.start()])
        name = found.group(1)
        value = _ESCAPES.get(name)
        if value is None:
            value = variables.get(name)
            if value is None:
                return None
        out += [STAR] if value == ANY_VALUE else list(value)
        position = found.end()
    out += _glob_tokens(resource[position:])
    return tuple(out)


def _glob_tokens(text: str) -> list[str]:
    return [STAR if c == "*" else ONE if c == "?" else c for c in text]


glob_tokens = _glob_tokens


def regex(resource_tokens: Tokens) -> re.Pattern[str]:
    return _regex(resource_tokens)


@lru_cache(maxsize=4096)
def _regex(resource_tokens: Tokens) -> re.Pattern[str]:
    parts = [".*" if t == STAR else "." if t == ONE else re.escape(t) for t in resource_tokens]
    return re.compile("".join(parts), re.DOTALL)


def action_matches(pattern: str, action: str) -> bool:
    return _regex(tuple(_glob_tokens(pattern.lower()))).fullmatch(action.lower()) is not None


def condition_holds(condition: Mapping[str, Any] | None, facts: Facts) -> bool | None:
    """True or False when the condition is understood, None when it is not."""
    if not condition:
        return True
    if set(condition) != {"Bool"} or not isinstance(condition["Bool"], dict) or set(condition["Bool"]) != {IS_ATTACHED}:
        return None
    wanted = condition["Bool"][IS_ATTACHED]
    values = wanted if isinstance(wanted, list) else [wanted]
    normalised = {str(v).lower() for v in values}
    if not normalised <= {"true", "false"}:
        return None
    return ("true" if facts.is_attached else "false") in normalised


def applies(statement: Statement, action: str, resource: str, variables: Mapping[str, str], facts: Facts) -> bool:
    if not any(action_matches(a, action) for a in statement.actions):
        return False
    matched = False
    for pattern in statement.resources:
        found = tokens(pattern, variables)
        if found is not None and regex(found).fullmatch(resource):
            matched = True
            break
    if not matched:
        return False
    holds = condition_holds(statement.condition, facts)
    return (not statement.allows) if holds is None else holds


def allowed(
    statements: Sequence[Statement], action: str, resource: str, variables: Mapping[str, str], facts: Facts
) -> bool:
    """AWS's evaluation: an applicable Deny wins, then an applicable Allow grants; default deny."""
    relevant = [s for s in statements if applies(s, action, resource, variables, facts)]
    return bool(relevant) and all(s.allows for s in relevant)
