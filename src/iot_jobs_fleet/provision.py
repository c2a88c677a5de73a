"""Create or reuse the fleet's things, their certificates and the group, through the ``iot`` API.

The same calls work against AWS IoT: per device CreateThing, a P-256 key and CSR made here
(the private key never leaves the fleet directory), CreateCertificateFromCsr(setAsActive),
AttachThingPrincipal and AddThingToThingGroup; then once CreatePolicy and AttachPolicy of the
fleet's policy to the group (a device may connect as its thing name and use its own jobs topics).
The per-device calls run on a pool of threads, each with its own client (``signed_client``'s lean
SigV4 client by default, or boto3's); the group and policy calls use a boto3 client.

The fleet directory (0700) keeps ``<thing>.key`` (0600) and ``<thing>.crt`` per device and
``fleet.json`` (the group, the policy, and which service issued them: a second run reuses what
exists; a reset local service, whose CA changed, gets a fresh set).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

POLICY_NAME = "iot-jobs-fleet-device"
THING = "${iot:Connection.Thing.ThingName}"


class ProvisionError(Exception):
    """One line for the user."""


@dataclass(frozen=True)
class Identity:
    thing: str
    cert: Path
    key: Path


def policy_document(region: str, account: str) -> str:
    """Connect as the thing's own name; publish, receive and subscribe on its own jobs topics only."""
    arn = f"arn:aws:iot:{region}:{account}"
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": "iot:Connect", "Resource": f"{arn}:client/{THING}"},
                {
                    "Effect": "Allow",
                    "Action": "iot:Subscribe",
                    "Resource": f"{arn}:topicfilter/$aws/things/{THING}/jobs/*",
                },
                {
                    "Effect": "Allow",
                    "Action": ["iot:Publish", "iot:Receive"],
                    "Resource": f"{arn}:topic/$aws/things/{THING}/jobs/*",
                },
            ],
        }
    )


def thing_names(prefix: str, count: int) -> list[str]:
    width = max(4, len(str(count - 1)))
    return [f"{prefix}{i:0{width}d}" for i in range(count)]


def key_and_csr(thing: str) -> tuple[bytes, str]:
    """A P-256 private key (PEM, PKCS#8) and a CSR for it with CN = the thing's name."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, thing)]))
        .sign(key, hashes.SHA256())
    )
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return pem, csr.public_bytes(serialization.Encoding.PEM).decode()


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.replace(tmp, path)


class FleetDir:
    def __init__(self, root: Path) -> None:
        self.root = root

    def create(self) -> None:
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.root, 0o700)

    def cert(self, thing: str) -> Path:
        return self.root / f"{thing}.crt"

    def key(self, thing: str) -> Path:
        return self.root / f"{thing}.key"

    def has(self, thing: str) -> bool:
        return self.cert(thing).is_file() and self.key(thing).is_file()

    @property
    def meta_path(self) -> Path:
        return self.root / "fleet.json"

    def meta(self) -> dict[str, Any]:
        try:
            data = json.loads(self.meta_path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def write_meta(self, meta: dict[str, Any]) -> None:
        _write_private(self.meta_path, json.dumps(meta, indent=1, sort_keys=True).encode())

    def forget(self) -> None:
        """Remove every identity (their service is gone); the directory itself stays."""
        for path in self.root.glob("*.crt"):
            path.unlink()
        for path in self.root.glob("*.key"):
            path.unlink()


def issuer_id(ca_file: Path | None) -> str:
    """Which service issued a set: the SHA-256 of its CA certificate file (empty against AWS)."""
    if ca_file is None or not ca_file.is_file():
        return ""
    return hashlib.sha256(ca_file.read_bytes()).hexdigest()


def given_set(directory: Path, count: int) -> list[Identity]:
    """Against AWS: ``<thing>.crt``/``<thing>.key`` pairs already made (sorted by name), ``count`` of them."""
    things = sorted(p.stem for p in directory.glob("*.crt") if (directory / f"{p.stem}.key").is_file())
    if len(things) < count:
        raise ProvisionError(f"{directory} holds {len(things)} <thing>.crt/<thing>.key pairs, not {count}")
    return [Identity(t, directory / f"{t}.crt", directory / f"{t}.key") for t in things[:count]]


def provision(
    client_factory: Callable[[], Any],
    fleet_dir: FleetDir,
    things: Sequence[str],
    group: str,
    issuer: str,
    threads: int = 16,
    progress: Callable[[int, int], None] | None = None,
    device_client_factory: Callable[[], Any] | None = None,
) -> list[Identity]:
    """Make sure every thing exists with its certificate in ``group``, and the group has the policy.

    ``client_factory`` makes the clients of the group and policy calls (boto3), and of the
    per-device calls unless ``device_client_factory`` is given (one client per thread)."""
    fleet_dir.create()
    meta = fleet_dir.meta()
    if meta.get("issuer", issuer) != issuer:
        fleet_dir.forget()  # another service (or a reset one): these certificates mean nothing there
        meta = {}
    local = threading.local()

    def client() -> Any:
        made = getattr(local, "client", None)
        if made is None:
            made = local.client = (device_client_factory or client_factory)()
        return made

    iot = client_factory()
    group_arn = _ensure_group(iot, group)
    region, account = group_arn.split(":")[3:5]
    _ensure_policy(iot, group_arn, region, account)
    regroup = meta.get("group") != group
    todo = [t for t in things if not fleet_dir.has(t)]
    again = [t for t in things if fleet_dir.has(t)] if regroup else []
    done = 0
    lock = threading.Lock()

    def one(thing: str) -> None:
        nonlocal done
        if fleet_dir.has(thing):
            client().add_thing_to_thing_group(thingGroupName=group, thingName=thing)
        else:
            _new_identity(client(), fleet_dir, thing, group)
        with lock:
            done += 1
            if progress is not None:
                progress(done, len(todo) + len(again))

    with ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="provision") as pool:
        for future in [pool.submit(one, t) for t in [*todo, *again]]:
            try:
                future.result()
            except Exception as exc:
                pool.shutdown(wait=True, cancel_futures=True)  # the first error is the answer
                if isinstance(exc, ProvisionError):
                    raise
                raise ProvisionError(_describe(exc)) from None
    fleet_dir.write_meta({"issuer": issuer, "group": group, "policy": POLICY_NAME, "things": len(things)})
    return [Identity(t, fleet_dir.cert(t), fleet_dir.key(t)) for t in things]


def _new_identity(iot: Any, fleet_dir: FleetDir, thing: str, group: str) -> None:
    iot.create_thing(thingName=thing)
    key_pem, csr = key_and_csr(thing)
    made = iot.create_certificate_from_csr(certificateSigningRequest=csr, setAsActive=True)
    iot.attach_thing_principal(thingName=thing, principal=made["certificateArn"])
    iot.add_thing_to_thing_group(thingGroupName=group, thingName=thing)
    # The key first: a certificate file means the pair is complete.
    _write_private(fleet_dir.key(thing), key_pem)
    _write_private(fleet_dir.cert(thing), made["certificatePem"].encode())


def _ensure_group(iot: Any, group: str) -> str:
    try:
        return str(iot.create_thing_group(thingGroupName=group)["thingGroupArn"])
    except Exception as exc:
        if _code(exc) != "ResourceAlreadyExistsException":
            raise ProvisionError(_describe(exc)) from None
    return str(iot.describe_thing_group(thingGroupName=group)["thingGroupArn"])


def _ensure_policy(iot: Any, group_arn: str, region: str, account: str) -> None:
    try:
        iot.create_policy(policyName=POLICY_NAME, policyDocument=policy_document(region, account))
    except Exception as exc:
        if _code(exc) != "ResourceAlreadyExistsException":
            raise ProvisionError(_describe(exc)) from None
    try:
        iot.attach_policy(policyName=POLICY_NAME, target=group_arn)
    except Exception as exc:
        raise ProvisionError(_describe(exc)) from None


def _code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    return str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""


def _describe(exc: Exception) -> str:
    code = _code(exc)
    response = getattr(exc, "response", None)
    if code and isinstance(response, dict):
        return f"{code}: {response.get('Error', {}).get('Message', '')}".rstrip(": ")
    return f"{type(exc).__name__}: {exc}"
