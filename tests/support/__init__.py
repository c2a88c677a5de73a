"""Helpers of the integration tests of the local AWS IoT Jobs service (``iot_jobs_local``).

Everything here talks to the REAL service: ``python -m iot_jobs_local --state-dir DIR serve`` runs as a
subprocess (Mosquitto with mutual TLS, the jobs engine on SQLite, the boto3-compatible HTTP API), and
tests reach it the way real clients do. The fixtures that use these helpers are in ``tests/conftest.py``.

* :mod:`support.common` - region, account and timeouts; :func:`~support.common.unique` names and
  :func:`~support.common.free_port`.
* :mod:`support.processes` - watching processes that are not our children (:class:`~support.processes.ExitWatch`,
  ``/proc`` look-ups).
* :mod:`support.service` - :class:`~support.service.ServiceProcess`: the package's
  :class:`iot_jobs_local.testing.LocalService` (one running service: state dir, ports, log, start / stop /
  restart / ``kill -9``) with what only this suite needs: the CLI, a reused boto3 ``iot`` client, read-only
  SQL on its database, its Mosquitto's pids; :func:`~support.service.new_service` starts one on free ports.
* :mod:`support.logs` - printing a service's logs for a failing session.
* The SDK device is the package's :class:`iot_jobs_local.testing.Device` (``IotJobsClientV2`` over MQTT5
  mTLS with both event streams open; its event kinds and :func:`~iot_jobs_local.testing.device.modeled`
  are in :mod:`iot_jobs_local.testing.device`).
* :mod:`support.raw_device` - :class:`~support.raw_device.RawDevice`: a device on paho-mqtt 2.x (MQTT 5,
  same certificate) that publishes arbitrary payloads on arbitrary topics and records every message it
  receives, for what the SDK cannot send; :func:`~support.raw_device.paho_client`.
* :mod:`support.api` - boto3 helpers: error assertions, paginated ``collect``, waiting for a deleted job,
  a thing with its own certificate and policy, thing group ARNs.

Rules the helpers follow (and tests should too): no fixed sleeps to synchronise - wait for a line,
a future or an event with a deadline; the only bounded waits are the "nothing arrives" assertions
(``Device.assert_no_event``, :meth:`RawDevice.assert_no_message`), kept at or below one second.
"""
