"""AWS managed job templates through the real boto3 ``iot`` client against the real iot-jobs-local:
ListManagedJobTemplates (filter, paging), DescribeManagedJobTemplate, CreateJob from a managed
template's ARN with ``documentParameters`` substituted, and every refusal.

Expected values come from the AWS IoT developer guide (job-templates-managed.html and
job-template-manage-cli-create.html, whose describe-managed-job-template output for AWS-Download-File
is copied below) and botocore's model.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ParamValidationError

from iot_jobs_local.testing import Device
from repl_driver import PipedRepl, payload
from support.api import check_error, collect, error_of
from support.common import unique
from support.service import ServiceProcess

NAMES = [
    "AWS-Download-File",
    "AWS-Install-Application",
    "AWS-Reboot",
    "AWS-Remove-Application",
    "AWS-Restart-Application",
    "AWS-Run-Command",
    "AWS-Start-Application",
    "AWS-Stop-Application",
]

#: job-template-manage-cli-create.html: describe-managed-job-template --template-name AWS-Download-File.
DOWNLOAD_FILE_DOCUMENT = (
    '{"version":"1.0","steps":[{"action":{"name":"Download-File","type":"runHandler","input":'
    '{"handler":"download-file.sh","args":["${aws:iot:parameter:downloadUrl}","${aws:iot:parameter:filePath}"],'
    '"path":"${aws:iot:parameter:pathToHandler}"},"runAsUser":"${aws:iot:parameter:runAsUser}"}}]}'
)
DOWNLOAD_FILE_PARAMETERS = [
    {
        "key": "downloadUrl",
        "description": "URL of file to download.",
        "regex": "(.*?)",
        "example": "http://www.example.com/index.html",
        "optional": False,
    },
    {
        "key": "filePath",
        "description": "Path on the device where downloaded file is written.",
        "regex": "(.*?)",
        "example": "/path/to/file",
        "optional": False,
    },
    {
        "key": "runAsUser",
        "description": (
            "Execute handler as another user. If not specified, then handler is executed as the same user as "
            "device client."
        ),
        "regex": "(.){0,256}",
        "example": "user1",
        "optional": True,
    },
    {
        "key": "pathToHandler",
        "description": (
            "Path to handler on the device. If not specified, then device client will use the current working "
            "directory."
        ),
        "regex": "(.){0,4096}",
        "example": "/path/to/handler/script",
        "optional": True,
    },
]


def _arn(service: ServiceProcess, name: str, version: str = "1.0") -> str:
    return f"arn:aws:iot:{service.region}::jobtemplate/{name}:{version}"


def _handler_document(step: str, handler: str, args: list[str] | None, path: str, user: str) -> dict[str, Any]:
    handler_input: dict[str, Any] = {"handler": handler}
    if args is not None:
        handler_input["args"] = args
    handler_input["path"] = path
    return {
        "version": "1.0",
        "steps": [{"action": {"name": step, "type": "runHandler", "input": handler_input, "runAsUser": user}}],
    }


#: (template, documentParameters, the document a device receives), from job-templates-managed.html.
CASES: list[tuple[str, dict[str, str], dict[str, Any]]] = [
    (
        "AWS-Download-File",
        {"downloadUrl": "https://example.com/a.tgz", "filePath": "/tmp/a.tgz"},
        _handler_document("Download-File", "download-file.sh", ["https://example.com/a.tgz", "/tmp/a.tgz"], "", ""),
    ),
    (
        "AWS-Install-Application",
        {"packages": "nginx curl", "runAsUser": "root"},
        _handler_document("Install-Application", "install-packages.sh", ["nginx curl"], "", "root"),
    ),
    ("AWS-Reboot", {}, _handler_document("Reboot", "reboot.sh", None, "", "")),
    (
        "AWS-Remove-Application",
        {"packages": "nginx", "pathToHandler": "/opt/handlers"},
        _handler_document("Remove-Application", "remove-packages.sh", ["nginx"], "/opt/handlers", ""),
    ),
    (
        "AWS-Restart-Application",
        {"services": "ssh"},
        _handler_document("Restart-Application", "restart-services.sh", ["ssh"], "", ""),
    ),
    (
        "AWS-Start-Application",
        {"services": "nginx ssh", "runAsUser": "svc", "pathToHandler": "/h"},
        _handler_document("Start-Application", "start-services.sh", ["nginx ssh"], "/h", "svc"),
    ),
    (
        "AWS-Stop-Application",
        {"services": "nginx"},
        _handler_document("Stop-Application", "stop-services.sh", ["nginx"], "", ""),
    ),
    (
        "AWS-Run-Command",
        {"command": "echo,ok"},
        {
            "version": "1.0",
            "steps": [
                {
                    "action": {
                        "name": "Run-Command",
                        "type": "runCommand",
                        "input": {"command": "echo,ok"},
                        "runAsUser": "",
                    }
                }
            ],
        },
    ),
]


@pytest.fixture
def thing(service: ServiceProcess) -> str:
    name = unique("mt-thing")
    service.iot().create_thing(thingName=name)
    return name


# ListManagedJobTemplates -------------------------------------------------------------------------
def test_list_every_template(iot: Any, service: ServiceProcess) -> None:
    response = iot.list_managed_job_templates()
    assert "nextToken" not in response
    templates = response["managedJobTemplates"]
    assert [t["templateName"] for t in templates] == NAMES
    for t in templates:
        assert list(t) == ["templateArn", "templateName", "description", "environments", "templateVersion"]
        assert t["templateArn"] == _arn(service, t["templateName"])
        assert t["templateVersion"] == "1.0"
        assert t["environments"] == ["LINUX"]
        assert t["description"].startswith("A managed job template for ")
    by_name = {t["templateName"]: t for t in templates}
    # The API descriptions the developer guide's list and describe output shows.
    assert by_name["AWS-Reboot"]["description"] == "A managed job template for rebooting the device."
    assert by_name["AWS-Download-File"]["description"] == "A managed job template for downloading a file."
    assert (
        by_name["AWS-Restart-Application"]["description"]
        == "A managed job template for restarting one or more system services."
    )


def test_list_pages(iot: Any) -> None:
    everything = iot.list_managed_job_templates()["managedJobTemplates"]
    paged, pages = collect(iot.list_managed_job_templates, "managedJobTemplates", maxResults=3)
    assert paged == everything and pages == 3
    one, pages = collect(iot.list_managed_job_templates, "managedJobTemplates", maxResults=1)
    assert one == everything and pages == len(everything)
    # boto3's own paginator (input_token/output_token nextToken, limit_key maxResults).
    paginator = iot.get_paginator("list_managed_job_templates")
    pages_seen = list(paginator.paginate(PaginationConfig={"PageSize": 5}))
    assert len(pages_seen) == 2
    assert [t for p in pages_seen for t in p["managedJobTemplates"]] == everything
    last = iot.list_managed_job_templates(maxResults=len(everything))
    assert "nextToken" not in last


def test_list_refusals(iot: Any) -> None:
    check_error(error_of(iot.list_managed_job_templates, nextToken="garbage"), "InvalidRequestException", 400)
    check_error(error_of(iot.list_managed_job_templates, maxResults=251), "InvalidRequestException", 400)
    check_error(error_of(iot.list_managed_job_templates, templateName="x" * 65), "InvalidRequestException", 400)
    for _ in range(2):
        iot.create_job_template(jobTemplateId=unique("custom"), description="mine", document='{"a":1}')
    other = iot.list_job_templates(maxResults=1)["nextToken"]  # a token of another listing is not this one's
    check_error(error_of(iot.list_managed_job_templates, nextToken=other), "InvalidRequestException", 400)
    with pytest.raises(ParamValidationError):  # boto3 checks min itself
        iot.list_managed_job_templates(maxResults=0)


def test_list_filtered_by_name(iot: Any, service: ServiceProcess) -> None:
    reboot = iot.list_managed_job_templates(templateName="AWS-Reboot")["managedJobTemplates"]
    assert reboot == [
        {
            "templateArn": _arn(service, "AWS-Reboot"),
            "templateName": "AWS-Reboot",
            "description": "A managed job template for rebooting the device.",
            "environments": ["LINUX"],
            "templateVersion": "1.0",
        }
    ]
    assert iot.list_managed_job_templates(templateName="AWS-No-Such")["managedJobTemplates"] == []
    assert iot.list_managed_job_templates(templateName="aws-reboot")["managedJobTemplates"] == []


# DescribeManagedJobTemplate ----------------------------------------------------------------------
def test_describe_download_file_as_documented(iot: Any, service: ServiceProcess) -> None:
    for kwargs in ({}, {"templateVersion": "1.0"}):
        described = iot.describe_managed_job_template(templateName="AWS-Download-File", **kwargs)
        described.pop("ResponseMetadata")
        assert described == {
            "templateName": "AWS-Download-File",
            "templateArn": _arn(service, "AWS-Download-File"),
            "description": "A managed job template for downloading a file.",
            "templateVersion": "1.0",
            "environments": ["LINUX"],
            "documentParameters": DOWNLOAD_FILE_PARAMETERS,
            "document": DOWNLOAD_FILE_DOCUMENT,
        }


@pytest.mark.parametrize("name", NAMES)
def test_describe_each(iot: Any, service: ServiceProcess, name: str) -> None:
    described = iot.describe_managed_job_template(templateName=name)
    assert described["templateArn"] == _arn(service, name)
    assert described["templateVersion"] == "1.0"
    document = json.loads(described["document"])
    assert described["document"] == json.dumps(document, separators=(",", ":"))  # compact
    assert document["version"] == "1.0" and len(document["steps"]) == 1
    keys = [p["key"] for p in described["documentParameters"]]
    required = [p["key"] for p in described["documentParameters"] if not p["optional"]]
    # job-templates-managed.html: each template's required parameters; runAsUser on all, pathToHandler
    # on the handler templates.
    expected_required = {
        "AWS-Download-File": ["downloadUrl", "filePath"],
        "AWS-Install-Application": ["packages"],
        "AWS-Reboot": [],
        "AWS-Remove-Application": ["packages"],
        "AWS-Restart-Application": ["services"],
        "AWS-Run-Command": ["command"],
        "AWS-Start-Application": ["services"],
        "AWS-Stop-Application": ["services"],
    }[name]
    assert required == expected_required
    optional = ["runAsUser"] if name == "AWS-Run-Command" else ["runAsUser", "pathToHandler"]
    assert keys == [*expected_required, *optional]
    for parameter in described["documentParameters"]:
        assert list(parameter) == ["key", "description", "regex", "example", "optional"]
        placeholder = "${aws:iot:parameter:" + parameter["key"] + "}"
        assert placeholder in described["document"]


def test_describe_refusals(iot: Any) -> None:
    check_error(
        error_of(iot.describe_managed_job_template, templateName="AWS-No-Such"), "ResourceNotFoundException", 404
    )
    check_error(
        error_of(iot.describe_managed_job_template, templateName="AWS-Reboot", templateVersion="2.0"),
        "ResourceNotFoundException",
        404,
    )
    check_error(
        error_of(iot.describe_managed_job_template, templateName="AWS-Reboot", templateVersion="latest"),
        "InvalidRequestException",
        400,
    )
    check_error(error_of(iot.describe_managed_job_template, templateName="x" * 65), "InvalidRequestException", 400)


# CreateJob from a managed template -------------------------------------------------------------
@pytest.mark.parametrize(("name", "parameters", "delivered"), CASES, ids=[c[0] for c in CASES])
def test_create_job_from_each_template(
    service: ServiceProcess,
    thing: str,
    name: str,
    parameters: dict[str, str],
    delivered: dict[str, Any],
) -> None:
    iot = service.iot()
    job_id = unique("mt-job")
    kwargs: dict[str, Any] = {"documentParameters": parameters} if parameters else {}
    created = iot.create_job(
        jobId=job_id, targets=[service.thing_arn(thing)], jobTemplateArn=_arn(service, name), **kwargs
    )
    template = iot.describe_managed_job_template(templateName=name)
    # No description given: the job takes the template's (the developer guide's create-job example).
    assert created["description"] == template["description"]
    job = iot.describe_job(jobId=job_id)["job"]
    assert job["jobTemplateArn"] == _arn(service, name)
    assert job["description"] == template["description"]
    if parameters:
        assert job["documentParameters"] == parameters
    else:
        assert "documentParameters" not in job
    document = iot.get_job_document(jobId=job_id)["document"]
    assert json.loads(document) == delivered
    assert document == json.dumps(delivered, separators=(",", ":"))
    assert iot.get_job_document(jobId=job_id, beforeSubstitution=True)["document"] == template["document"]
    assert iot.get_job_document(jobId=job_id, beforeSubstitution=False)["document"] == document
    # The device plane (HTTP) delivers the substituted document too.
    data = service.boto3_client("iot-jobs-data")
    execution = data.describe_job_execution(jobId=job_id, thingName=thing, includeJobDocument=True)["execution"]
    assert json.loads(execution["jobDocument"]) == delivered


def test_device_receives_substituted_document(service: ServiceProcess, device: Callable[..., Device]) -> None:
    d = device()
    iot = service.iot()
    job_id = unique("mt-job")
    iot.create_job(
        jobId=job_id,
        targets=[service.thing_arn(d.thing)],
        jobTemplateArn=_arn(service, "AWS-Download-File"),
        documentParameters={"downloadUrl": "https://example.com/f", "filePath": "/tmp/f"},
        description="mine",
        timeoutConfig={"inProgressTimeoutInMinutes": 5},
    )
    started = d.start_next()
    assert started.execution.job_id == job_id
    assert started.execution.job_document["steps"][0]["action"]["input"]["args"] == ["https://example.com/f", "/tmp/f"]
    job = iot.describe_job(jobId=job_id)["job"]
    assert job["description"] == "mine"  # an explicit description and configuration are kept
    assert job["timeoutConfig"] == {"inProgressTimeoutInMinutes": 5}


def test_values_with_quotes_stay_json(service: ServiceProcess, thing: str) -> None:
    iot = service.iot()
    job_id = unique("mt-job")
    value = 'say "hi",\\n, ${aws:iot:parameter:runAsUser} é'
    iot.create_job(
        jobId=job_id,
        targets=[service.thing_arn(thing)],
        jobTemplateArn=_arn(service, "AWS-Run-Command"),
        documentParameters={"command": value, "runAsUser": "bob"},
    )
    document = json.loads(iot.get_job_document(jobId=job_id)["document"])
    action = document["steps"][0]["action"]
    # The value is inserted as it is; a placeholder inside a value is not expanded again.
    assert action["input"]["command"] == value
    assert action["runAsUser"] == "bob"


# CreateJob refusals ----------------------------------------------------------------------------
def _refused(service: ServiceProcess, thing: str, code: str, status: int, **kwargs: Any) -> str:
    job_id = unique("mt-bad")
    error = error_of(service.iot().create_job, jobId=job_id, targets=[service.thing_arn(thing)], **kwargs)
    check_error(error, code, status)
    check_error(error_of(service.iot().describe_job, jobId=job_id), "ResourceNotFoundException", 404)
    return str(error.response["Error"]["Message"])


def test_parameters_need_a_managed_template(service: ServiceProcess, thing: str) -> None:
    message = _refused(
        service, thing, "InvalidRequestException", 400, document='{"a":1}', documentParameters={"command": "ls"}
    )
    assert "managed templates" in message
    custom = unique("custom")
    service.iot().create_job_template(jobTemplateId=custom, description="mine", document='{"a":1}')
    custom_arn = service.iot().describe_job_template(jobTemplateId=custom)["jobTemplateArn"]
    message = _refused(
        service, thing, "InvalidRequestException", 400, jobTemplateArn=custom_arn, documentParameters={"a": "b"}
    )
    assert "managed templates" in message


def test_required_parameters(service: ServiceProcess, thing: str) -> None:
    arn = _arn(service, "AWS-Download-File")
    message = _refused(service, thing, "InvalidRequestException", 400, jobTemplateArn=arn)
    assert "downloadUrl" in message and "filePath" in message
    message = _refused(
        service, thing, "InvalidRequestException", 400, jobTemplateArn=arn, documentParameters={"downloadUrl": "u"}
    )
    assert "filePath" in message and "downloadUrl" not in message.split(":")[-1]
    message = _refused(
        service, thing, "InvalidRequestException", 400, jobTemplateArn=_arn(service, "AWS-Run-Command"),
        documentParameters={"runAsUser": "bob"},
    )  # fmt: skip
    assert "command" in message


def test_unknown_parameters(service: ServiceProcess, thing: str) -> None:
    message = _refused(
        service,
        thing,
        "InvalidRequestException",
        400,
        jobTemplateArn=_arn(service, "AWS-Reboot"),
        documentParameters={"force": "yes"},
    )
    assert "force" in message
    # AWS-Run-Command has no pathToHandler (job-templates-managed.html).
    message = _refused(
        service,
        thing,
        "InvalidRequestException",
        400,
        jobTemplateArn=_arn(service, "AWS-Run-Command"),
        documentParameters={"command": "ls", "pathToHandler": "/h"},
    )
    assert "pathToHandler" in message


def test_parameter_patterns(service: ServiceProcess, thing: str) -> None:
    arn = _arn(service, "AWS-Reboot")
    # The template's regex: runAsUser (.){0,256} (at most 256 characters, as the guide says).
    message = _refused(
        service, thing, "InvalidRequestException", 400, jobTemplateArn=arn, documentParameters={"runAsUser": "u" * 257}
    )
    assert "runAsUser" in message
    ok = unique("mt-job")
    service.iot().create_job(
        jobId=ok, targets=[service.thing_arn(thing)], jobTemplateArn=arn, documentParameters={"runAsUser": "u" * 256}
    )
    # The model's ParameterMap: values [^\p{C}]+ of 1-30720 characters, keys [a-zA-Z0-9_-]+ of 1-128.
    message = _refused(
        service, thing, "InvalidRequestException", 400, jobTemplateArn=arn, documentParameters={"runAsUser": "a\nb"}
    )
    assert "documentParameters.runAsUser.value" in message
    message = _refused(
        service, thing, "InvalidRequestException", 400, jobTemplateArn=arn, documentParameters={"run as": "x"}
    )
    assert "documentParameters.run as.key" in message
    _refused(
        service,
        thing,
        "InvalidRequestException",
        400,
        jobTemplateArn=_arn(service, "AWS-Run-Command"),
        documentParameters={"command": "x" * 30721},
    )
    with pytest.raises(ParamValidationError):  # boto3 checks the minimum length itself
        service.iot().create_job(
            jobId=unique("mt-bad"),
            targets=[service.thing_arn(thing)],
            jobTemplateArn=arn,
            documentParameters={"runAsUser": ""},
        )


def test_template_arn_refusals(service: ServiceProcess, thing: str) -> None:
    _refused(
        service,
        thing,
        "InvalidRequestException",
        400,
        jobTemplateArn=_arn(service, "AWS-Reboot"),
        document='{"a":1}',
    )
    for arn in (
        _arn(service, "AWS-No-Such"),
        _arn(service, "AWS-Reboot", "9.9"),
        "arn:aws:iot:eu-north-9::jobtemplate/AWS-Reboot:1.0",
        f"arn:aws:iot:{service.region}::jobtemplate/AWS-Reboot",
    ):
        _refused(service, thing, "ResourceNotFoundException", 404, jobTemplateArn=arn)


# The console ------------------------------------------------------------------------------------
def test_console_templates(repl: tuple[PipedRepl, str], service: ServiceProcess) -> None:
    r, thing = repl
    r.expected_code = 1  # piped: the refused commands below make the exit status 1
    r.send("list-templates")
    listed = payload(r.expect("ListManagedJobTemplates Response: "))
    assert [t["templateName"] for t in listed["managedJobTemplates"]] == NAMES
    assert "nextToken" not in listed
    r.send("list-templates --name AWS-Reboot")
    listed = payload(r.next_line())
    assert [t["templateArn"] for t in listed["managedJobTemplates"]] == [_arn(service, "AWS-Reboot")]
    r.send("describe-template AWS-Download-File --version 1.0")
    described = payload(r.next_line())
    assert described["document"] == DOWNLOAD_FILE_DOCUMENT

    # Mistakes: one clear line each, nothing sent (or AWS's code when the service refuses).
    cases = [
        ("create-job J1 --template", "Error: create-job: --template needs a template name"),
        ("create-job J1 --template AWS-Reboot --param", "Error: create-job: --param needs at least one KEY=VALUE"),
        ("create-job J1 --template AWS-Reboot --param runAsUser", "Error: create-job: --param expects KEY=VALUE"),
        ("create-job J1 --template AWS-Reboot --param =x", "Error: create-job: --param expects KEY=VALUE, got '=x'"),
        ("create-job J1 --template AWS-Reboot --param runAsUser=", "Error: create-job: --param runAsUser= has no"),
        ("create-job J1 --param command=ls", "Error: create-job: --param needs --template NAME"),
        ("create-job J1 --template AWS-Reboot --frob", "Error: create-job: unknown option --frob"),
        ("create-job J1 --template 'AWS-Reboot", "Error: create-job: cannot parse the arguments"),
        ("create-job J1 --template AWS-Nope", "DescribeManagedJobTemplate failed: ResourceNotFoundException: "),
        ("create-job J1 --template AWS-Download-File", "CreateJob failed: InvalidRequestException: Missing required"),
        (
            "create-job J1 --template AWS-Reboot --param force=yes",
            "CreateJob failed: InvalidRequestException: Document parameter(s) force",
        ),
        ("describe-template AWS-Reboot --version x", "DescribeManagedJobTemplate failed: InvalidRequestException: "),
    ]
    for command, expected in cases:
        r.send(command)
        line = r.next_line()
        assert line.startswith(expected), f"{command!r} -> {line!r}"
        assert "\n" not in line and "Traceback" not in line

    # A job from a managed template on the console's thing; the device's events carry the
    # substituted document.
    job = unique("mt-console")
    r.send(f'create-job {job} --template AWS-Install-Application --param packages="nginx curl" runAsUser=root')
    created = payload(r.expect("CreateJob Response: "))
    assert created["jobId"] == job
    assert created["description"] == "A managed job template for installing one or more applications."
    nxt = payload(r.expect("Received NextJobExecutionChanged event: "))
    assert nxt["execution"]["jobId"] == job
    action = nxt["execution"]["jobDocument"]["steps"][0]["action"]
    assert action["input"]["args"] == ["nginx curl"] and action["runAsUser"] == "root"
    job_record = service.iot().describe_job(jobId=job)["job"]
    assert job_record["targets"] == [service.thing_arn(thing)]
    assert job_record["jobTemplateArn"] == _arn(service, "AWS-Install-Application")
    assert job_record["documentParameters"] == {"packages": "nginx curl", "runAsUser": "root"}

    # No parameters at all; and the help shows the template form.
    reboot = unique("mt-console")
    r.send(f"create-job {reboot} --template AWS-Reboot")
    assert payload(r.expect("CreateJob Response: "))["jobId"] == reboot
    r.send("help create-job")
    r.expect(
        "usage: create-job <jobId> <document-json> | create-job <jobId> --template NAME"
    )  # help wraps at 80 columns
    r.expect("  --template NAME: ")
    r.send("help")
    r.expect("  list-templates ")
