"""AWS managed job templates: the catalogue the AWS IoT documentation lists, as data, and the rules
CreateJob applies to ``documentParameters``.

Sources (cited by the rows of docs/fidelity.md too):

* [MT] https://docs.aws.amazon.com/iot/latest/developerguide/job-templates-managed.html: the
  templates, their required parameters, handlers and documents; "All these templates support the
  Linux environment".
* [CLI] https://docs.aws.amazon.com/iot/latest/developerguide/job-template-manage-cli-create.html:
  real ListManagedJobTemplates / DescribeManagedJobTemplate output (ARNs, versions, the API
  descriptions, AWS-Download-File's documentParameters and its compact document).
* botocore's ``iot`` model: the shapes (``DocumentParameter``, ``ParameterMap``) and "documentParameters
  can only be used when creating jobs from AWS managed templates".

What the sources leave open (the descriptions, regexes and examples of ``packages``, ``services``
and ``command``; two templates' API descriptions; the errors of CreateJob) is marked UNCONFIRMED
here and listed in docs/fidelity.md.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import InvalidRequest

#: Every managed template runs on Linux [MT][CLI].
LINUX = ("LINUX",)
#: ``${aws:iot:parameter:<key>}`` [MT]; the key is a ParameterKey (``[a-zA-Z0-9_-]+``, model).
PLACEHOLDER = re.compile(r"\$\{aws:iot:parameter:([a-zA-Z0-9_-]+)\}")
#: What an optional parameter left out becomes in the document. UNCONFIRMED (AWS does not say);
#: the empty string is what third-party agents expect (``"path":""``, ``"runAsUser":""``).
OMITTED_OPTIONAL = ""
#: CreateJob with ``documentParameters`` but no managed template. The rule is the model's ("can only
#: be used when creating jobs from AWS managed templates"); code and wording are UNCONFIRMED.
PARAMETERS_ONLY_MANAGED = "documentParameters can only be used when creating jobs from AWS managed templates"
_ARN = re.compile(r"^arn:aws[a-z-]*:iot:([a-z0-9-]+)::jobtemplate/([^/:]{1,64}):([^/:]+)\Z")


@dataclass(frozen=True)
class DocumentParameter:
    """The model's ``DocumentParameter``: guidance for CreateJob's ``documentParameters``."""

    key: str
    description: str
    regex: str
    example: str
    optional: bool


@dataclass(frozen=True)
class ManagedTemplate:
    name: str
    version: str
    description: str
    parameters: tuple[DocumentParameter, ...]
    #: A compact JSON string, as DescribeManagedJobTemplate returns it [CLI].
    document: str
    environments: tuple[str, ...] = LINUX

    def arn(self, region: str) -> str:
        """``arn:aws:iot:<region>::jobtemplate/<name>:<version>``: no account [CLI]."""
        return f"arn:aws:iot:{region}::jobtemplate/{self.name}:{self.version}"

    @property
    def label(self) -> str:
        return f"{self.name}:{self.version}"


# The two optional parameters of every handler template, as [CLI] shows them for AWS-Download-File
# (assumed identical on the others: UNCONFIRMED). [MT]: runAsUser is at most 256 characters.
_RUN_AS_USER = DocumentParameter(
    "runAsUser",
    "Execute handler as another user. If not specified, then handler is executed as the same user as device client.",
    "(.){0,256}",
    "user1",
    True,
)
_PATH_TO_HANDLER = DocumentParameter(
    "pathToHandler",
    "Path to handler on the device. If not specified, then device client will use the current working directory.",
    "(.){0,4096}",
    "/path/to/handler/script",
    True,
)


def _required(key: str, description: str, example: str, regex: str = "(.*?)") -> DocumentParameter:
    # UNCONFIRMED except for downloadUrl and filePath: the regex (AWS-Download-File's required
    # parameters use "(.*?)") and the example.
    return DocumentParameter(key, description, regex, example, False)


def _document(step: str, handler: str, args: tuple[str, ...] | None) -> str:
    """The one-step runHandler document of [MT], keys in its order; AWS-Reboot has no ``args``."""
    handler_input: dict[str, Any] = {"handler": handler}
    if args is not None:
        handler_input["args"] = [f"${{aws:iot:parameter:{key}}}" for key in args]
    handler_input["path"] = "${aws:iot:parameter:pathToHandler}"
    action = {
        "name": step,
        "type": "runHandler",
        "input": handler_input,
        "runAsUser": "${aws:iot:parameter:runAsUser}",
    }
    return _compact({"version": "1.0", "steps": [{"action": action}]})


def _handler_template(
    name: str, description: str, step: str, handler: str, required: tuple[DocumentParameter, ...] | None
) -> ManagedTemplate:
    """Required parameters first, then runAsUser, then pathToHandler (the order of [CLI])."""
    args = None if required is None else tuple(p.key for p in required)
    parameters = (*(required or ()), _RUN_AS_USER, _PATH_TO_HANDLER)
    return ManagedTemplate(name, "1.0", description, parameters, _document(step, handler, args))


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) if part.isdigit() else -1 for part in version.split("."))


_PACKAGES_INSTALL = _required(
    "packages", "A space-separated list of one or more applications to be installed.", "nginx curl"
)
_PACKAGES_REMOVE = _required(
    "packages", "A space-separated list of one or more applications to be uninstalled.", "nginx curl"
)


def _services(verb: str) -> DocumentParameter:
    return _required("services", f"A space-separated list of one or more applications to be {verb}.", "nginx ssh")


_COMMAND = _required(
    "command",
    "A comma separated string of command. Any comma contained in the command itself must be escaped.",
    "ls,-l,/tmp",
)

#: The catalogue, in name order (the order ListManagedJobTemplates uses here: UNCONFIRMED). The
#: names use ASCII hyphens; the guide's headings print en dashes, which is typography only.
CATALOGUE: tuple[ManagedTemplate, ...] = tuple(
    sorted(
        (
            _handler_template(
                "AWS-Download-File",
                "A managed job template for downloading a file.",
                "Download-File",
                "download-file.sh",
                (
                    _required("downloadUrl", "URL of file to download.", "http://www.example.com/index.html"),
                    _required("filePath", "Path on the device where downloaded file is written.", "/path/to/file"),
                ),
            ),
            _handler_template(
                "AWS-Install-Application",
                # UNCONFIRMED: by analogy with AWS-Remove-Application's, which [CLI] shows.
                "A managed job template for installing one or more applications.",
                "Install-Application",
                "install-packages.sh",
                (_PACKAGES_INSTALL,),
            ),
            _handler_template(
                "AWS-Reboot", "A managed job template for rebooting the device.", "Reboot", "reboot.sh", None
            ),
            _handler_template(
                "AWS-Remove-Application",
                "A managed job template for uninstalling one or more applications.",
                "Remove-Application",
                "remove-packages.sh",
                (_PACKAGES_REMOVE,),
            ),
            _handler_template(
                "AWS-Restart-Application",
                "A managed job template for restarting one or more system services.",
                "Restart-Application",
                "restart-services.sh",
                (_services("restarted"),),
            ),
            _handler_template(
                "AWS-Start-Application",
                # UNCONFIRMED: by analogy with the Stop and Restart templates' descriptions [CLI].
                "A managed job template for starting one or more system services.",
                "Start-Application",
                "start-services.sh",
                (_services("started"),),
            ),
            _handler_template(
                "AWS-Stop-Application",
                "A managed job template for stopping one or more system services.",
                "Stop-Application",
                "stop-services.sh",
                (_services("stopped"),),
            ),
            ManagedTemplate(
                "AWS-Run-Command",
                "1.0",
                # UNCONFIRMED: [MT] describes it as the template "for running a shell command".
                "A managed job template for running a shell command.",
                # [MT]: command, and runAsUser; no pathToHandler (there is no handler).
                (_COMMAND, _RUN_AS_USER),
                _compact(
                    {
                        "version": "1.0",
                        "steps": [
                            {
                                "action": {
                                    "name": "Run-Command",
                                    "type": "runCommand",
                                    "input": {"command": "${aws:iot:parameter:command}"},
                                    "runAsUser": "${aws:iot:parameter:runAsUser}",
                                }
                            }
                        ],
                    }
                ),
            ),
        ),
        key=lambda t: (t.name, _version_key(t.version)),
    )
)


def listing(name: str | None, after: tuple[Any, ...] | None, limit: int) -> tuple[list[ManagedTemplate], bool]:
    """ListManagedJobTemplates: every version of every template (of ``name`` only, if given; an
    unknown name gives an empty list: UNCONFIRMED), after the cursor ``(name, version)``, and
    whether more follow."""
    found = [t for t in CATALOGUE if name is None or t.name == name]
    if after is not None:
        key = (str(after[0]), _version_key(str(after[1])))
        found = [t for t in found if (t.name, _version_key(t.version)) > key]
    return found[:limit], len(found) > limit


def find(name: str, version: str | None = None) -> ManagedTemplate | None:
    """A template by name and version; without a version the default one, which is taken to be the
    newest (UNCONFIRMED: AWS says only "the pre-defined default version")."""
    versions = [t for t in CATALOGUE if t.name == name]
    if version is None:
        return versions[-1] if versions else None
    return next((t for t in versions if t.version == version), None)


def parse_arn(arn: str) -> tuple[str, str, str] | None:
    """(region, name, version) of a managed template's ARN (its account field is empty), else None."""
    found = _ARN.match(arn)
    return None if found is None else (found.group(1), found.group(2), found.group(3))


def from_arn(arn: Any, region: str) -> ManagedTemplate | None:
    """The managed template an ARN of this region names, if it names one."""
    parsed = parse_arn(arn) if isinstance(arn, str) else None
    if parsed is None or parsed[0] != region:
        return None
    return find(parsed[1], parsed[2])


def check_parameters(template: ManagedTemplate, values: Mapping[str, Any]) -> None:
    """CreateJob's checks of ``documentParameters`` against the template. AWS documents that the
    required ones must be given [MT]; the rest (unknown keys refused, values fully matching the
    parameter's ``regex``) and every message are UNCONFIRMED (docs/fidelity.md)."""
    declared = {p.key: p for p in template.parameters}
    unknown = sorted(k for k in values if k not in declared)
    if unknown:
        raise InvalidRequest(
            f"Document parameter(s) {', '.join(unknown)} not defined in managed template {template.label}"
        )
    missing = [p.key for p in template.parameters if not p.optional and p.key not in values]
    if missing:
        raise InvalidRequest(
            f"Missing required document parameter(s) for managed template {template.label}: {', '.join(missing)}"
        )
    for key, value in values.items():
        if not isinstance(value, str):
            raise InvalidRequest(f"Document parameter {key} must be a string")
        if re.fullmatch(declared[key].regex, value) is None:
            raise InvalidRequest(f"Value of document parameter {key} does not match the pattern {declared[key].regex}")


def substitute(template: ManagedTemplate, values: Mapping[str, str]) -> str:
    """The template's document with each ``${aws:iot:parameter:<key>}`` replaced by its value (an
    optional parameter left out by ``OMITTED_OPTIONAL``). Replacement happens inside the parsed
    JSON strings, so a value with quotes or backslashes stays a valid document (how AWS escapes
    them is UNCONFIRMED)."""
    resolved = {p.key: values.get(p.key, OMITTED_OPTIONAL) for p in template.parameters}

    def replace(found: re.Match[str]) -> str:
        return resolved.get(found.group(1), found.group(0))

    def walk(node: Any) -> Any:
        if isinstance(node, str):
            return PLACEHOLDER.sub(replace, node)
        if isinstance(node, list):
            return [walk(item) for item in node]
        if isinstance(node, dict):
            return {key: walk(item) for key, item in node.items()}
        return node

    return _compact(walk(json.loads(template.document)))
