"""AWS Signature Version 4 verification of incoming requests, against the credentials we issued.

The canonical request is rebuilt the way botocore builds it (``botocore/auth.py``, ``SigV4Auth``):

* the path exactly as it arrived (path labels are already percent-encoded by the client, so
  ``$next`` arrives as ``%24next``), dot segments and repeated slashes removed, then
  percent-encoded once more (``quote(path, safe="/~")``), as AWS does for every service but S3;
* the query pairs decoded, re-encoded with ``quote(safe="-_.~")`` and sorted;
* the headers named in ``SignedHeaders``, lower-cased, values trimmed and inner whitespace folded;
* the payload's SHA-256 (or the ``X-Amz-Content-SHA256`` header when the client sent one).

Failures raise :class:`AuthFailure` carrying the code AWS answers with; the HTTP layer turns it
into a 403 with that code in ``x-amzn-ErrorType`` (so boto3 raises ``ClientError`` with it).
Derived signing keys are cached per (secret, date, region, service): verifying a request costs
one HMAC plus the hashes of the canonical request and the body.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import hmac
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from urllib.parse import quote, unquote

from botocore.utils import normalize_url_path

ALGORITHM = "AWS4-HMAC-SHA256"
TIMESTAMP_FORMAT = "%Y%m%dT%H%M%SZ"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
#: AWS accepts a request whose date is at most this far from its own clock, either way.
MAX_SKEW_SECONDS = 15 * 60

MISSING_TOKEN = "MissingAuthenticationTokenException"
INCOMPLETE = "IncompleteSignatureException"
UNRECOGNIZED = "UnrecognizedClientException"
INVALID = "InvalidSignatureException"

MISMATCH_MESSAGE = (
    "The request signature we calculated does not match the signature you provided. Check your AWS "
    "Secret Access Key and signing method. Consult the service documentation for details."
)

_PARAMETER = re.compile(r"(Credential|SignedHeaders|Signature)=([^,\s]*)")

HeaderValues = Callable[[str], list[str]]


class AuthFailure(Exception):
    """The request is not authenticated; ``code`` is the error code AWS returns for the reason."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Caller:
    """Who signed an accepted request, and for which service (the credential scope's service)."""

    access_key_id: str
    region: str
    service: str


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def canonical_uri(raw_path: str) -> str:
    if raw_path.startswith("/") and "//" not in raw_path and "/." not in raw_path:
        return quote(raw_path, safe="/~")  # nothing for normalize_url_path to remove
    return quote(normalize_url_path(raw_path), safe="/~")


def canonical_query(raw_query: str) -> str:
    pairs = []
    for part in raw_query.split("&"):
        if not part:
            continue
        key, _, value = part.partition("=")
        pairs.append((quote(unquote(key), safe="-_.~"), quote(unquote(value), safe="-_.~")))
    return "&".join(f"{k}={v}" for k, v in sorted(pairs))


def _timestamp(header_values: HeaderValues) -> str:
    amz_date = header_values("x-amz-date")
    if amz_date:
        return amz_date[0].strip()
    date = header_values("date")
    if date:
        try:
            parsed = parsedate_to_datetime(date[0])
        except (TypeError, ValueError):
            parsed = None
        if parsed is not None:
            return parsed.astimezone(datetime.timezone.utc).strftime(TIMESTAMP_FORMAT)
    raise AuthFailure(
        INCOMPLETE, "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
    )


@functools.lru_cache(maxsize=64)
def _epoch(timestamp: str) -> float:
    """Cached: every request signed in the same second carries the same timestamp."""
    try:
        parsed = datetime.datetime.strptime(timestamp, TIMESTAMP_FORMAT)
    except ValueError:
        raise AuthFailure(INCOMPLETE, f"Date must be in ISO-8601 'basic format'. Got '{timestamp}'.") from None
    return parsed.replace(tzinfo=datetime.timezone.utc).timestamp()


def _format(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime(TIMESTAMP_FORMAT)


class Verifier:
    """Checks SigV4 signatures made with one of ``secrets`` (access key id -> secret access key)."""

    def __init__(
        self,
        secrets: Mapping[str, str],
        region: str,
        services: frozenset[str],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._secrets = dict(secrets)
        self._region = region
        self._services = services
        self._clock = clock
        self._keys: dict[tuple[str, str, str, str], bytes] = {}

    def _signing_key(self, secret: str, date: str, region: str, service: str) -> bytes:
        cache_key = (secret, date, region, service)
        key = self._keys.get(cache_key)
        if key is None:
            if len(self._keys) > 64:
                self._keys.clear()
            key = _hmac(_hmac(_hmac(_hmac(f"AWS4{secret}".encode(), date), region), service), "aws4_request")
            self._keys[cache_key] = key
        return key

    def verify(self, method: str, raw_path: str, raw_query: str, header_values: HeaderValues, body: bytes) -> Caller:
        """Return the caller of a correctly signed request, or raise :class:`AuthFailure`."""
        authorization = header_values("authorization")
        if not authorization:
            raise AuthFailure(MISSING_TOKEN, "Missing Authentication Token")
        algorithm, _, rest = authorization[0].strip().partition(" ")
        if algorithm != ALGORITHM:
            raise AuthFailure(INCOMPLETE, f"Unsupported authorization type: {algorithm or '(none)'}")
        parameters = dict(_PARAMETER.findall(rest))
        missing = [name for name in ("Credential", "SignedHeaders", "Signature") if not parameters.get(name)]
        if missing:
            raise AuthFailure(
                INCOMPLETE, " ".join(f"Authorization header requires '{name}' parameter." for name in missing)
            )
        scope = parameters["Credential"].split("/")
        if len(scope) != 5:
            raise AuthFailure(INCOMPLETE, f"Credential should be scoped to 5 parts, not {len(scope)}.")
        access_key_id, date, region, service, terminator = scope
        secret = self._secrets.get(access_key_id)
        if secret is None:
            raise AuthFailure(UNRECOGNIZED, "The security token included in the request is invalid.")
        timestamp = _timestamp(header_values)
        if terminator != "aws4_request":
            raise AuthFailure(
                INVALID, f"Credential should be scoped with a valid terminator: 'aws4_request', not '{terminator}'."
            )
        if date != timestamp[:8]:
            raise AuthFailure(
                INVALID,
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
                f"'{date}' != '{timestamp[:8]}', from '{timestamp}'.",
            )
        if region != self._region:
            raise AuthFailure(INVALID, f"Credential should be scoped to a valid region, not '{region}'.")
        if service not in self._services:
            raise AuthFailure(INVALID, f"Credential should be scoped to correct service: '{service}'.")
        signed_headers = parameters["SignedHeaders"].split(";")
        if "host" not in signed_headers:
            raise AuthFailure(INVALID, "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")
        self._check_clock(timestamp)

        canonical_headers = "".join(
            f"{name}:{','.join(' '.join(v.split()) for v in header_values(name))}\n" for name in signed_headers
        )
        payload_hash = hashlib.sha256(body).hexdigest()
        declared = header_values("x-amz-content-sha256")
        if declared and declared[0] != payload_hash:
            if declared[0] != UNSIGNED_PAYLOAD:
                raise AuthFailure(INVALID, MISMATCH_MESSAGE)
            payload_hash = UNSIGNED_PAYLOAD
        canonical_request = "\n".join(
            (
                method.upper(),
                canonical_uri(raw_path),
                canonical_query(raw_query),
                canonical_headers,
                parameters["SignedHeaders"],
                payload_hash,
            )
        )
        string_to_sign = "\n".join(
            (
                ALGORITHM,
                timestamp,
                f"{date}/{region}/{service}/aws4_request",
                hashlib.sha256(canonical_request.encode()).hexdigest(),
            )
        )
        key = self._signing_key(secret, date, region, service)
        expected = hmac.digest(key, string_to_sign.encode(), "sha256").hex()  # one-shot C path
        if not hmac.compare_digest(expected, parameters["Signature"]):
            raise AuthFailure(INVALID, MISMATCH_MESSAGE)
        return Caller(access_key_id, region, service)

    def _check_clock(self, timestamp: str) -> None:
        signed_at = _epoch(timestamp)
        now = self._clock()
        if signed_at < now - MAX_SKEW_SECONDS:
            raise AuthFailure(
                INVALID,
                f"Signature expired: {timestamp} is now earlier than {_format(now - MAX_SKEW_SECONDS)} "
                f"({_format(now)} - 15 min.)",
            )
        if signed_at > now + MAX_SKEW_SECONDS:
            raise AuthFailure(
                INVALID,
                f"Signature not yet current: {timestamp} is still later than {_format(now + MAX_SKEW_SECONDS)} "
                f"({_format(now)} + 15 min.)",
            )
