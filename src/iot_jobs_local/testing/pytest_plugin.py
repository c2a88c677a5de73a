"""pytest fixtures for testing device code against iot-jobs-local (entry point ``pytest11``:
``iot_jobs_local``; or ``-p iot_jobs_local.testing.pytest_plugin``).

Inert unless a test asks: the service starts the first time a test uses one of these fixtures.

* ``iot_jobs_local`` (session): a :class:`LocalService` on free ports in a temporary directory.
  ``--iot-jobs-local-arg=--time-scale=600`` (repeatable) passes arguments to its ``serve``.
* ``iot_client`` / ``iot_jobs_data_client`` (session): boto3 clients bound to it.
* ``iot_device`` (function): a factory; ``iot_device()`` provisions a fresh thing (its certificate,
  the default device policy) and returns a connected :class:`Device`; ``iot_device("name")`` uses
  that thing. Disconnected at the end of the test.
* ``unique_name`` (function): ``unique_name("job")`` -> a fresh name: tests sharing the service
  isolate themselves by never reusing a thing or job name.
* ``iot_jobs_local_reset`` (function): the same service with its state wiped before the test, for
  tests that need an empty service (it restarts it: slower than fresh names).

A failing test's report gets a section with the tail of the log of every :class:`LocalService`
running in the test process (the fixture's, and any a test started itself).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from typing import Any

import pytest

from .device import Device
from .service import LocalService
from .service import unique_name as _unique_name


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--iot-jobs-local-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="an extra argument for the iot_jobs_local fixture's `iot-jobs-local serve` (repeatable)",
    )


#: How much of each running service's log a failing test's report shows.
LOG_TAIL_LINES = 80


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    """Attach the tail of every running service's log to a failing test's report."""
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for service in LocalService.running():
            tail = "\n".join(service.log_text().splitlines()[-LOG_TAIL_LINES:])
            report.sections.append((f"iot-jobs-local log tail ({service.log_path})", tail))


@pytest.fixture(scope="session")
def iot_jobs_local(pytestconfig: pytest.Config) -> Iterator[LocalService]:
    """The session's local service (free ports, temporary state directory)."""
    extra = [part for arg in pytestconfig.getoption("iot_jobs_local_arg") for part in arg.split("=", 1)]
    with LocalService(extra_args=extra) as service:
        yield service


@pytest.fixture(scope="session")
def iot_client(iot_jobs_local: LocalService) -> Any:
    """boto3 ``iot`` (control plane) bound to the local service."""
    return iot_jobs_local.client("iot")


@pytest.fixture(scope="session")
def iot_jobs_data_client(iot_jobs_local: LocalService) -> Any:
    """boto3 ``iot-jobs-data`` (the jobs data plane over HTTP) bound to the local service."""
    return iot_jobs_local.client("iot-jobs-data")


@pytest.fixture
def iot_device(iot_jobs_local: LocalService) -> Iterator[Callable[..., Device]]:
    """Factory of connected devices (thing, certificate, policy, IotJobsClientV2, both streams)."""
    made: list[Device] = []

    def make(thing: str | None = None, **kwargs: Any) -> Device:
        device = iot_jobs_local.device(thing, **kwargs)
        made.append(device)
        return device

    yield make
    for device in made:
        device.stop()


@pytest.fixture
def unique_name() -> Callable[[str], str]:
    """``unique_name("thing")`` -> ``thing-<12 hex>``, fresh for every call."""
    return _unique_name


@pytest.fixture
def iot_jobs_local_reset(iot_jobs_local: LocalService) -> LocalService:
    """The session's service, its state wiped first (same ports; boto3 clients made before work
    on, with the new credentials only if made again: use ``iot_jobs_local.client``)."""
    iot_jobs_local.reset()
    return iot_jobs_local
