"""Fixtures and hooks of the integration tests of the local AWS IoT Jobs service (``iot_jobs_local``).

The service and the SDK device are the package's own test harness (:mod:`iot_jobs_local.testing`:
``LocalService``, ``Device``), as users get it; what only this suite needs is in the ``support``
package next to this file (``tests/support/``; see its docstring): :class:`support.service.ServiceProcess`
(a ``LocalService`` with white-box helpers), :class:`support.raw_device.RawDevice`, boto3 helpers in
:mod:`support.api`. Tests import them from there, e.g. ``from support.service import ServiceProcess``;
pytest puts ``tests/`` on ``sys.path`` (this conftest is in a directory without ``__init__.py``, the
default ``prepend`` import mode).

Fixtures:

* ``service`` (session) - the service shared by most tests. Tests must use unique thing and job
  names (:func:`support.common.unique`) so that they never see each other's state.
* ``service_factory`` (function) - starts extra, private services (own state dir, own ports), e.g. for
  durability tests that kill the service; ``service_factory("--time-scale", "600")`` passes extra
  ``serve`` arguments. Every one is stopped at the end of the test.
* ``device`` / ``raw_device`` (function) - factories: ``device()`` provisions a fresh thing and
  returns a connected :class:`~iot_jobs_local.testing.Device`; ``device(thing)`` / ``raw_device(thing)``
  connect for a given thing. Everything they create is disconnected at the end of the test.
* ``iot`` (function) - ``service.iot()``.

A failing test's report gets the tail of every running service's log: the package's pytest plugin
(loaded through its ``pytest11`` entry point) does that for every ``LocalService``.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from iot_jobs_local.testing import Device
from repl_driver import PipedRepl
from support.agent import AgentProcess, handler_dir
from support.common import unique
from support.logs import print_logs
from support.raw_device import RawDevice
from support.service import ServiceProcess, new_service


@pytest.fixture(scope="session")
def service(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """The service shared by the whole session (own temp state dir, free ports).

    Tests sharing it must use unique thing and job names. Its log is printed at the end of the
    session if any test failed.
    """
    svc = new_service(tmp_path_factory.mktemp("iot-jobs-local"))
    try:
        yield svc
    finally:
        svc.stop()
        if request.session.testsfailed:
            print_logs(request.config, svc)


@pytest.fixture
def service_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., ServiceProcess]]:
    """Start private services for one test: ``svc = service_factory()``, or with extra ``serve``
    arguments: ``svc = service_factory("--time-scale", "600")``.

    Each has its own state dir under ``tmp_path`` and its own free ports. At the end of the test
    each is stopped, and any Mosquitto it left behind is killed (and the log printed on failure).
    """
    started: list[ServiceProcess] = []

    def make(*extra_args: str) -> ServiceProcess:
        svc = new_service(tmp_path / f"service-{len(started)}", extra_args)
        started.append(svc)
        return svc

    yield make
    for svc in started:
        svc.stop()
        for pid in svc.broker_pids():  # only if the broker outlived its service (a bug the tests report)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if _this_test_failed(request):
            print_logs(request.config, svc)


def _this_test_failed(request: pytest.FixtureRequest) -> bool:
    """Whether the test using a fixture failed (set by the report hook below), not any earlier one."""
    return bool(request.node.stash.get(_FAILED, False))


_FAILED = pytest.StashKey[bool]()


@pytest.fixture
def repl(service: ServiceProcess, tmp_path: Path) -> Iterator[tuple[PipedRepl, str]]:
    """The real ``iot-jobs`` program on a pipe, as its own new thing on the shared service. A test
    whose commands fail sets ``expected_code = 1`` (a piped session with a failure exits 1)."""
    thing = unique("repl")
    driver = PipedRepl(
        ["--local", "--state-dir", str(service.state_dir), "--thing", thing],
        env={"XDG_STATE_HOME": str(tmp_path / "state")},
    )
    try:
        yield driver, thing
    finally:
        if driver.process.poll() is None:
            driver.send("quit")
        assert driver.close() == driver.expected_code, driver.dump()


@pytest.fixture
def iot(service: ServiceProcess) -> Any:
    """The boto3 ``iot`` client of the shared service."""
    return service.iot()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Remember that the test failed, for :func:`service_factory`'s teardown."""
    report = yield
    if report.failed:
        item.stash[_FAILED] = True
    return report


@pytest.fixture
def device(request: pytest.FixtureRequest) -> Iterator[Callable[..., Device]]:
    """Factory of connected :class:`Device` objects.

    ``device()`` provisions a new unique thing on the shared ``service``; ``device(thing)`` uses that
    thing (several connections for one thing are fine: each gets its own client id);
    ``device(thing, service=other)`` connects to another service (the shared one is then not started).
    All are stopped at the end of the test.
    """
    made: list[Device] = []

    def make(thing: str | None = None, *, service: ServiceProcess | None = None, **kwargs: Any) -> Device:
        target: ServiceProcess = service if service is not None else request.getfixturevalue("service")
        name = thing or unique("thing")
        dev = target.device(name, files=kwargs.pop("files", None) or target.device_files(name), **kwargs)
        made.append(dev)
        return dev

    yield make
    for dev in made:
        dev.stop()


@pytest.fixture
def raw_device(request: pytest.FixtureRequest) -> Iterator[Callable[..., RawDevice]]:
    """Factory of connected :class:`RawDevice` objects: ``raw_device()`` (a new thing), ``raw_device(thing)``,
    ``raw_device(thing, subscribe=(...))``, ``raw_device(thing, service=other)``. Closed at teardown."""
    made: list[RawDevice] = []

    def make(thing: str | None = None, *, service: ServiceProcess | None = None, **kwargs: Any) -> RawDevice:
        target = service if service is not None else request.getfixturevalue("service")
        dev = RawDevice(target, thing or unique("thing"), **kwargs)
        made.append(dev)
        return dev

    yield make
    for dev in made:
        dev.close()


@pytest.fixture
def agent(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., AgentProcess]]:
    """Factory of running ``iot-jobs-agent`` processes: ``agent(thing, *flags, service=svc, handlers=dir)``
    (defaults: the shared service and ``tmp_path/handlers``). Stopped at the end of the test; a failed
    wait on the log includes the log."""
    made: list[AgentProcess] = []

    def make(
        thing: str, *flags: str, service: ServiceProcess | None = None, handlers: Path | None = None, ready: bool = True
    ) -> AgentProcess:
        target = service if service is not None else request.getfixturevalue("service")
        proc = AgentProcess(
            target, thing, handlers or handler_dir(tmp_path), tmp_path / f"agent-{len(made)}.log", *flags
        )
        made.append(proc)
        return proc.start(ready)

    yield make
    for proc in made:
        proc.stop()
