"""The device's MQTT connection (MQTT5, or 3.1.1), built from ``Settings``: the one place that does it.

The console's data plane uses it, and so do the programs that act as devices. ``Transport`` hides
which version it is behind three callbacks; ``jobs_client`` puts ``IotJobsClientV2`` on either. ``preflight`` turns
the CRT's silent retries (a wrong port, a missing file, an untrusted CA) into one clear error.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
from collections.abc import Callable
from typing import Any

from awscrt import http, mqtt, mqtt5, mqtt_request_response
from awsiot import iotjobs, mqtt5_client_builder, mqtt_connection_builder

from .errors import IotJobsError
from .settings import MQTT_VERSIONS, Settings, check_files

#: Seconds between PINGREQs; the reconnect back-off runs from the first delay to the last.
KEEP_ALIVE_S = 30
RECONNECT_DELAY_MS = (200, 3000)


def preflight(settings: Settings) -> None:
    """Fail in milliseconds, with a precise reason, where the CRT would retry or stall for 20 s.

    Checks that the certificate files exist, that the port accepts TCP connections and that the
    server's certificate is trusted by the CA we will use (an untrusted CA looks like a hang to s2n).
    """
    check_files(settings)
    context = ssl.create_default_context(cafile=str(settings.ca_file) if settings.ca_file else None)
    context.load_cert_chain(str(settings.cert), str(settings.key))
    if settings.proxy_host:
        return  # the TCP and TLS checks would go around the proxy
    if settings.port == 443:
        context.set_alpn_protocols(["x-amzn-mqtt-ca"])
    where = f"{settings.endpoint}:{settings.port}"
    try:
        with (
            socket.create_connection((settings.endpoint, settings.port), timeout=settings.connect_timeout) as raw,
            context.wrap_socket(raw, server_hostname=settings.endpoint),
        ):
            pass
    except ssl.SSLCertVerificationError as exc:
        hint = (
            "pass the CA that signed it with --ca_file"
            if settings.ca_file is None
            else f"it is not signed by {settings.ca_file}"
        )
        raise IotJobsError(
            f"the server certificate of {where} is not trusted ({exc.verify_message}); {hint}", "TlsError", "Connect"
        ) from exc
    except ssl.SSLError as exc:
        raise IotJobsError(f"TLS handshake with {where} failed: {exc.reason or exc}", "TlsError", "Connect") from exc
    except ConnectionRefusedError as exc:
        raise IotJobsError(
            f"connection refused by {where} (wrong --port, or no broker running?)", "ConnectionRefused", "Connect"
        ) from exc
    except socket.gaierror as exc:
        raise IotJobsError(f"cannot resolve {settings.endpoint}: {exc.strerror}", "DnsError", "Connect") from exc
    except OSError as exc:
        raise IotJobsError(f"cannot connect to {where}: {exc}", "ConnectError", "Connect") from exc


def crt_error_name(exc: BaseException | None) -> str:
    return getattr(exc, "name", None) or (type(exc).__name__ if exc else "unknown")


class Transport:
    """One device MQTT connection, MQTT5 or 3.1.1, told to three protocol-neutral callbacks.

    ``on_up()``: connected (first time and every reconnection). ``on_failed(reason)``: an attempt
    failed. ``on_down(error, taken_over)``: the connection was lost; ``taken_over`` when the broker
    said so (an MQTT5 DISCONNECT 0x8E; 3.1.1 has no such packet). Both reconnect by themselves once
    connected; only the MQTT5 client also retries a first connection that failed.
    """

    def __init__(
        self,
        settings: Settings,
        on_up: Callable[[], None],
        on_failed: Callable[[str], None],
        on_down: Callable[[str, bool], None],
        version: str = "5",
        flow_control: bool = True,
    ) -> None:
        if version not in MQTT_VERSIONS:
            raise IotJobsError(f"unknown MQTT version {version!r} (5 or 3.1.1)", "Usage")
        self.version = version
        self._on_up, self._on_failed, self._on_down = on_up, on_failed, on_down
        self._timeout = settings.connect_timeout
        self.client: mqtt5.Client | mqtt.Connection
        if version == "5":
            self.client = _mqtt5_client(settings, self, flow_control)
        else:
            self.client = _mqtt311_connection(settings, self)

    def start(self) -> None:
        if isinstance(self.client, mqtt5.Client):
            self.client.start()
        else:
            # The future's failure also reaches on_connection_failure; nothing to do with it here.
            self.client.connect().add_done_callback(lambda future: future.exception())

    def stop(self) -> None:
        if isinstance(self.client, mqtt5.Client):
            self.client.stop()
            return
        with contextlib.suppress(Exception):  # not connected, or already gone: stopped either way
            self.client.disconnect().result(self._timeout)

    # MQTT5 lifecycle -------------------------------------------------------------------------
    def mqtt5_success(self, _data: mqtt5.LifecycleConnectSuccessData) -> None:
        self._on_up()

    def mqtt5_failure(self, data: mqtt5.LifecycleConnectFailureData) -> None:
        reason = crt_error_name(data.exception)
        if data.connack_packet is not None and data.connack_packet.reason_code:
            reason = f"CONNACK {data.connack_packet.reason_code.name}"
        self._on_failed(reason)

    def mqtt5_disconnect(self, data: mqtt5.LifecycleDisconnectData) -> None:
        packet = data.disconnect_packet
        taken = packet is not None and packet.reason_code == mqtt5.DisconnectReasonCode.SESSION_TAKEN_OVER
        self._on_down(crt_error_name(data.exception), taken)

    # MQTT 3.1.1 lifecycle --------------------------------------------------------------------
    # The CRT passes these arguments by keyword.
    def mqtt311_success(self, connection: mqtt.Connection, callback_data: mqtt.OnConnectionSuccessData) -> None:
        self._on_up()  # also called after each reconnection (on_connection_resumed would repeat it)

    def mqtt311_failure(self, connection: mqtt.Connection, callback_data: mqtt.OnConnectionFailureData) -> None:
        self._on_failed(crt_error_name(callback_data.error))

    def mqtt311_interrupted(self, connection: mqtt.Connection, error: BaseException, **_kwargs: Any) -> None:
        self._on_down(crt_error_name(error), False)


def _mqtt5_client(settings: Settings, transport: Transport, flow_control: bool) -> mqtt5.Client:
    """An MQTT5 client with mutual TLS (not started), reconnecting by itself.

    ``flow_control=False`` turns off the builder's client-side limiter (AWS_IOT_CORE_DEFAULTS: a
    100 operations/s token bucket over SUBSCRIBE, UNSUBSCRIBE and PUBLISH alike). The agent's
    requests on a new job's topics cost a subscribe each, and with the limiter a job took ~45 ms
    to start instead of ~5 ms (docs/benchmarks.md); AWS's own limit counts publishes only.
    """
    proxy = http.HttpProxyOptions(settings.proxy_host, settings.proxy_port) if settings.proxy_host else None
    extra: dict[str, Any] = {}
    if not flow_control:
        extra["extended_validation_and_flow_control_options"] = mqtt5.ExtendedValidationAndFlowControlOptions.NONE
    return mqtt5_client_builder.mtls_from_path(
        endpoint=settings.endpoint,
        port=settings.port,
        cert_filepath=str(settings.cert),
        pri_key_filepath=str(settings.key),
        ca_filepath=str(settings.ca_file) if settings.ca_file else None,
        client_id=settings.client_id,
        clean_start=True,
        keep_alive_secs=KEEP_ALIVE_S,
        min_reconnect_delay_ms=RECONNECT_DELAY_MS[0],
        max_reconnect_delay_ms=RECONNECT_DELAY_MS[1],
        on_lifecycle_connection_success=transport.mqtt5_success,
        on_lifecycle_connection_failure=transport.mqtt5_failure,
        on_lifecycle_disconnection=transport.mqtt5_disconnect,
        http_proxy_options=proxy,
        **extra,
    )


def _mqtt311_connection(settings: Settings, transport: Transport) -> mqtt.Connection:
    """An MQTT 3.1.1 connection with mutual TLS (not connected): a clean session, as MQTT5's clean
    start (the builder's default is a persistent one); reconnect delays are whole seconds here."""
    proxy = http.HttpProxyOptions(settings.proxy_host, settings.proxy_port) if settings.proxy_host else None
    return mqtt_connection_builder.mtls_from_path(
        endpoint=settings.endpoint,
        port=settings.port,
        cert_filepath=str(settings.cert),
        pri_key_filepath=str(settings.key),
        ca_filepath=str(settings.ca_file) if settings.ca_file else None,
        client_id=settings.client_id,
        clean_session=True,
        keep_alive_secs=KEEP_ALIVE_S,
        reconnect_min_timeout_secs=1,
        reconnect_max_timeout_secs=max(1, RECONNECT_DELAY_MS[1] // 1000),
        on_connection_success=transport.mqtt311_success,
        on_connection_failure=transport.mqtt311_failure,
        on_connection_interrupted=transport.mqtt311_interrupted,
        http_proxy_options=proxy,
    )


def jobs_client(
    client: mqtt5.Client | mqtt.Connection, settings: Settings, streams: int = 2
) -> iotjobs.IotJobsClientV2:
    """``IotJobsClientV2`` on ``client``, with room for ``streams`` event streams."""
    return iotjobs.IotJobsClientV2(
        client,
        mqtt_request_response.ClientOptions(
            max_request_response_subscriptions=2,
            max_streaming_subscriptions=streams,
            operation_timeout_in_seconds=settings.operation_timeout,
        ),
    )
