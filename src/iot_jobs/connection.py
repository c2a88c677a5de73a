"""The device's MQTT connection, built from ``Settings``: the one place that does it.

The console's data plane uses it, and so do the programs that act as devices. ``preflight`` turns
the CRT's silent retries (a wrong port, a missing file, an untrusted CA) into one clear error.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable

from awscrt import http, mqtt5, mqtt_request_response
from awsiot import iotjobs, mqtt5_client_builder

from .errors import IotJobsError
from .settings import Settings, check_files

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


def mqtt5_client(
    settings: Settings,
    on_success: Callable[[mqtt5.LifecycleConnectSuccessData], None],
    on_failure: Callable[[mqtt5.LifecycleConnectFailureData], None],
    on_disconnect: Callable[[mqtt5.LifecycleDisconnectData], None],
) -> mqtt5.Client:
    """An MQTT5 client with mutual TLS (not started), reconnecting by itself."""
    proxy = http.HttpProxyOptions(settings.proxy_host, settings.proxy_port) if settings.proxy_host else None
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
        on_lifecycle_connection_success=on_success,
        on_lifecycle_connection_failure=on_failure,
        on_lifecycle_disconnection=on_disconnect,
        http_proxy_options=proxy,
    )


def jobs_client(client: mqtt5.Client, settings: Settings, streams: int = 2) -> iotjobs.IotJobsClientV2:
    """``IotJobsClientV2`` on ``client``, with room for ``streams`` event streams."""
    return iotjobs.IotJobsClientV2(
        client,
        mqtt_request_response.ClientOptions(
            max_request_response_subscriptions=2,
            max_streaming_subscriptions=streams,
            operation_timeout_in_seconds=settings.operation_timeout,
        ),
    )
