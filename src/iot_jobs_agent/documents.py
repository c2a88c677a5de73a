"""Job documents: the AWS IoT Device Client's schema 1.0 and its older one-operation schema, strictly.

Pure: a parsed JSON value in, a ``Plan`` or a ``DocumentError`` (whose text goes into the REJECTED
update's ``reason``) out. Rules follow the Device Client's ``source/jobs/JobDocument.cpp`` and README;
where it is lax (wrong types read as absent, unknown keys ignored, any ``version`` string) this is
strict: a wrong type or an unknown key is an error. Keys starting with ``_`` (comments) are allowed.
Extensions of ours, documented in docs/agent.md: ``safeToRepeat`` (top level) and ``timeoutSeconds``
(per action).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

RUN_HANDLER = "runHandler"
RUN_COMMAND = "runCommand"
MAX_ARGS = 256


class DocumentError(ValueError):
    """The document is invalid; ``str(exc)`` says why, in one line."""


@dataclass(frozen=True)
class Action:
    name: str
    type: str
    handler: str | None = None
    args: tuple[str, ...] = ()
    path: str = ""
    command: tuple[str, ...] = ()
    run_as_user: str = ""
    ignore_step_failure: bool = False
    timeout_seconds: float | None = None


@dataclass(frozen=True)
class Plan:
    version: str
    steps: tuple[Action, ...]
    final_step: Action | None = None
    include_stdout: bool = False
    safe_to_repeat: bool = False

    @property
    def actions(self) -> tuple[Action, ...]:
        return self.steps + ((self.final_step,) if self.final_step else ())


def _keys(obj: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(k for k in obj if k not in allowed and not k.startswith("_"))
    if unknown:
        raise DocumentError(f"{where}: unknown key(s) {', '.join(unknown)}")


def _string(obj: dict[str, Any], key: str, where: str, *, required: bool = False, empty: bool = True) -> str:
    value = obj.get(key)
    if value is None:
        if required:
            raise DocumentError(f"{where}.{key} is required")
        return ""
    if not isinstance(value, str):
        raise DocumentError(f"{where}.{key} must be a string")
    if not empty and not value:
        raise DocumentError(f"{where}.{key} must not be empty")
    if "\0" in value:
        raise DocumentError(f"{where}.{key} contains a NUL character")
    return value


def _flag(obj: dict[str, Any], key: str, where: str) -> bool:
    """The Device Client reads these as the strings "true"/"false"; a JSON boolean is accepted too."""
    value = obj.get(key)
    if value is None:
        return False
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, str) and value in ("true", "false"):
        return value == "true"

    raise DocumentError(f'{where}.{key} must be "true", "false" or a boolean')


def _strings(obj: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = obj.get(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise DocumentError(f"{where}.{key} must be a list of strings")
    if len(value) > MAX_ARGS:
        raise DocumentError(f"{where}.{key} has more than {MAX_ARGS} entries")
    if any("\0" in v for v in value):
        raise DocumentError(f"{where}.{key} contains a NUL character")
    return tuple(value)


def check_handler_name(name: str, where: str = "handler") -> str:
    """A bare file name: no path separator, not ``.``/``..``, no NUL."""
    if not name:
        raise DocumentError(f"{where} must not be empty")
    if "/" in name or "\\" in name or name in (".", "..") or "\0" in name:
        raise DocumentError(f"{where} {name!r} must be a file name in the handler directory (no '/' or '..')")
    return name


def split_command(command: str, where: str) -> tuple[str, ...]:
    """The Device Client's runCommand rule: split on unescaped commas, ``\\,`` is a comma, trim each
    token, drop empty ones; the first token (the program) may not contain whitespace."""
    tokens = [t.replace("\\,", ",").strip() for t in re.findall(r"(?:\\,|[^,])+", command)]
    tokens = [t for t in tokens if t]
    if not tokens:
        raise DocumentError(f"{where}.command is empty")
    if re.search(r"\s", tokens[0]):
        raise DocumentError(
            f"{where}.command: the program {tokens[0]!r} contains whitespace (separate arguments with commas)"
        )
    return tuple(tokens)


def _timeout(obj: dict[str, Any], where: str) -> float | None:
    value = obj.get("timeoutSeconds")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 7 * 24 * 3600:
        raise DocumentError(f"{where}.timeoutSeconds must be a number of seconds in (0, 604800]")
    return float(value)


def _action(step: Any, where: str) -> Action:
    if not isinstance(step, dict):
        raise DocumentError(f"{where} must be an object")
    _keys(step, {"action"}, where)
    action = step.get("action")
    where = f"{where}.action"
    if not isinstance(action, dict):
        raise DocumentError(f"{where} must be an object")
    _keys(action, {"name", "type", "input", "runAsUser", "ignoreStepFailure", "allowStdErr", "timeoutSeconds"}, where)
    name = _string(action, "name", where, required=True, empty=False)
    kind = _string(action, "type", where, required=True)
    if kind not in (RUN_HANDLER, RUN_COMMAND):
        raise DocumentError(f"{where}.type must be {RUN_HANDLER} or {RUN_COMMAND}, got {kind!r}")
    allow_stderr = action.get("allowStdErr")
    if allow_stderr is not None and (isinstance(allow_stderr, bool) or not isinstance(allow_stderr, int)):
        raise DocumentError(f"{where}.allowStdErr must be an integer")
    inputs = action.get("input")
    if not isinstance(inputs, dict):
        raise DocumentError(f"{where}.input must be an object")
    common = {
        "name": name,
        "type": kind,
        "run_as_user": _string(action, "runAsUser", where),
        "ignore_step_failure": _flag(action, "ignoreStepFailure", where),
        "timeout_seconds": _timeout(action, where),
    }
    if kind == RUN_HANDLER:
        _keys(inputs, {"handler", "args", "path"}, f"{where}.input")
        handler = check_handler_name(
            _string(inputs, "handler", f"{where}.input", required=True), f"{where}.input.handler"
        )
        return Action(
            handler=handler,
            args=_strings(inputs, "args", f"{where}.input"),
            path=_string(inputs, "path", f"{where}.input"),
            **common,  # type: ignore[arg-type]
        )
    _keys(inputs, {"command"}, f"{where}.input")
    command = _string(inputs, "command", f"{where}.input", required=True)
    return Action(command=split_command(command, f"{where}.input"), **common)  # type: ignore[arg-type]


def _conditions(value: Any) -> None:
    """Validated as the Device Client does, never evaluated (it does not either)."""
    if value is None:
        return
    if not isinstance(value, list):
        raise DocumentError("conditions must be a list")
    for i, item in enumerate(value):
        where = f"conditions[{i}]"
        if not isinstance(item, dict):
            raise DocumentError(f"{where} must be an object")
        _keys(item, {"key", "value", "type"}, where)
        _string(item, "key", where, required=True, empty=False)
        values = _strings(item, "value", where)
        if not values:
            raise DocumentError(f"{where}.value must be a non-empty list of strings")
        _string(item, "type", where)


def parse(document: Any) -> Plan:
    """The plan of a job document (already parsed from JSON), or ``DocumentError``."""
    if not isinstance(document, dict):
        raise DocumentError("the job document must be a JSON object")
    if "version" not in document:
        return _old_schema(document)
    version = document["version"]
    if version != "1.0":
        raise DocumentError(f'version must be the string "1.0", got {version!r}')
    _keys(document, {"version", "includeStdOut", "conditions", "steps", "finalStep", "safeToRepeat"}, "document")
    _conditions(document.get("conditions"))
    steps = document.get("steps")
    if not isinstance(steps, list) or not steps:
        raise DocumentError("steps must be a non-empty list")
    final = document.get("finalStep")
    return Plan(
        version="1.0",
        steps=tuple(_action(step, f"steps[{i}]") for i, step in enumerate(steps)),
        final_step=_action(final, "finalStep") if final is not None else None,
        include_stdout=_flag(document, "includeStdOut", "document"),
        safe_to_repeat=_flag(document, "safeToRepeat", "document"),
    )


def _old_schema(document: dict[str, Any]) -> Plan:
    """``{operation, args, path, allowStdErr, includeStdOut}``: one runHandler step named after the
    operation, whose handler is the operation (the Device Client's "0.0")."""
    _keys(document, {"operation", "args", "path", "allowStdErr", "includeStdOut", "safeToRepeat"}, "document")
    operation = _string(document, "operation", "document", required=True)
    inputs: dict[str, Any] = {"handler": operation}
    inputs.update({k: document[k] for k in ("args", "path") if k in document})
    action_doc: dict[str, Any] = {"name": operation or "operation", "type": RUN_HANDLER, "input": inputs}
    if "allowStdErr" in document:
        action_doc["allowStdErr"] = document["allowStdErr"]
    step = {"action": action_doc}
    action = _action(step, "document")
    return Plan(
        version="0.0",
        steps=(action,),
        include_stdout=_flag(document, "includeStdOut", "document"),
        safe_to_repeat=_flag(document, "safeToRepeat", "document"),
    )
