"""Pure rules of the agent's job documents (Device Client schema 1.0 and the old one-operation schema)."""

from __future__ import annotations

from typing import Any

import pytest

from iot_jobs_agent.documents import DocumentError, parse, split_command


def handler(name: str = "h.sh", **extra: Any) -> dict[str, Any]:
    return {"action": {"name": "n", "type": "runHandler", "input": {"handler": name}, **extra}}


def doc(*steps: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {"version": "1.0", "steps": list(steps), **top}


def test_a_managed_template_document_parses() -> None:
    plan = parse(
        doc(
            {
                "action": {
                    "name": "Download-File",
                    "type": "runHandler",
                    "input": {"handler": "download-file.sh", "args": ["http://x/y", "/tmp/y"], "path": ""},
                    "runAsUser": "",
                }
            }
        )
    )
    (action,) = plan.steps
    assert (action.handler, action.args, action.path, action.run_as_user) == (
        "download-file.sh",
        ("http://x/y", "/tmp/y"),
        "",
        "",
    )
    assert not plan.include_stdout and not plan.safe_to_repeat and plan.final_step is None


def test_flags_strings_or_booleans_and_final_step_last() -> None:
    plan = parse(
        doc(
            handler(ignoreStepFailure="true"),
            handler(),
            includeStdOut=True,
            safeToRepeat="true",
            finalStep=handler("f"),
        )
    )
    assert plan.include_stdout and plan.safe_to_repeat
    assert [a.ignore_step_failure for a in plan.steps] == [True, False]
    assert plan.actions[-1].handler == "f"


def test_old_schema_is_one_run_handler_step() -> None:
    plan = parse({"operation": "install", "args": ["a"], "allowStdErr": 1, "includeStdOut": "true"})
    assert plan.version == "0.0"
    (action,) = plan.steps
    assert (action.name, action.handler, action.args) == ("install", "install", ("a",))


def test_run_command_is_split_like_the_device_client() -> None:
    assert split_command(r"echo, a\,b ,, c", "x") == ("echo", "a,b", "c")
    with pytest.raises(DocumentError, match="whitespace"):
        split_command("echo ok", "x")
    with pytest.raises(DocumentError, match="empty"):
        split_command(" , ", "x")


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ("text", "must be a JSON object"),
        ([], "must be a JSON object"),
        ({"version": "2.0", "steps": [handler()]}, "version must be"),
        ({"version": "1.0"}, "steps must be a non-empty list"),
        (doc(), "steps must be a non-empty list"),
        (doc("step"), r"steps\[0\] must be an object"),
        (doc({}), r"steps\[0\].action must be an object"),
        (doc({"action": {"type": "runHandler", "input": {"handler": "h"}}}), "name is required"),
        (doc({"action": {"name": "", "type": "runHandler", "input": {"handler": "h"}}}), "must not be empty"),
        (doc({"action": {"name": "n", "type": "shell", "input": {}}}), "type must be runHandler or runCommand"),
        (doc({"action": {"name": "n", "type": "runHandler", "input": []}}), "input must be an object"),
        (doc({"action": {"name": "n", "type": "runHandler", "input": {}}}), "handler is required"),
        (doc({"action": {"name": "n", "type": "runHandler", "input": {"handler": 3}}}), "handler must be a string"),
        (doc(handler("a/b")), "no '/' or '..'"),
        (doc(handler("..")), "no '/' or '..'"),
        (
            doc({"action": {"name": "n", "type": "runHandler", "input": {"handler": "h", "args": "x"}}}),
            "list of strings",
        ),
        (
            doc({"action": {"name": "n", "type": "runHandler", "input": {"handler": "h", "args": [1]}}}),
            "list of strings",
        ),
        (doc({"action": {"name": "n", "type": "runCommand", "input": {}}}), "command is required"),
        (doc(handler(runAsUser=0)), "runAsUser must be a string"),
        (doc(handler(ignoreStepFailure="yes")), "ignoreStepFailure must be"),
        (doc(handler(allowStdErr="1")), "allowStdErr must be an integer"),
        (doc(handler(timeoutSeconds=0)), "timeoutSeconds must be"),
        (doc(handler(), extra=1), "unknown key"),
        (doc(handler(), conditions=[{"key": "k", "value": []}]), "non-empty list"),
        ({"args": []}, "operation is required"),
        ({"operation": 5}, "operation must be a string"),
    ],
)
def test_invalid_documents_say_why(document: Any, reason: str) -> None:
    with pytest.raises(DocumentError, match=reason):
        parse(document)


def test_comment_keys_are_allowed() -> None:
    assert parse(doc(handler(), _comment="why")).steps[0].handler == "h.sh"
