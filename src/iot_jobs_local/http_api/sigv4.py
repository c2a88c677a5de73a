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
What an Authorization header says besides its signature (credential scope, signed headers, the
derived signing key) is parsed and checked once per distinct header text: verifying a request
costs building its canonical request, one HMAC and the hashes of the canonical request and body.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import hmac
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from urllib.parse import quote, unquote

from botocore.utils import normalize_url_path

ALGORITHM = "AWS4-HMAC-SHA256"
TIMESTAMP_FORMAT = "%Y%m%dT%H%M%SZ"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
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

#: A request's values of a header, by its lower-case name.
HeaderValues = Callable[[str], Sequence[str]]


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


@dataclass(frozen=True)
class _Scope:
    """The parts of an Authorization header that do not change with each request."""

    caller: Caller
    date: str
    credential_scope: str
    signed_headers: tuple[str, ...]
    signed_headers_text: str
    #: The signature, when the scope was parsed from a whole header (not cached then).
    signature: str
    key: bytes
    bad_terminator: AuthFailure | None
    later: AuthFailure | None


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


_UNRESERVED_PATH = re.compile(r"/[A-Za-z0-9/_~-]*\Z")


def canonical_uri(raw_path: str) -> str:
    if _UNRESERVED_PATH.match(raw_path) and "//" not in raw_path:
        return raw_path  # nothing to normalise or encode
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
        self._scopes: dict[str, _Scope] = {}

    def _signing_key(self, secret: str, date: str, region: str, service: str) -> bytes:
        cache_key = (secret, date, region, service)
        key = self._keys.get(cache_key)
        if key is None:
            if len(self._keys) > 64:
                self._keys.clear()
            key = _hmac(_hmac(_hmac(_hmac(f"AWS4{secret}".encode(), date), region), service), "aws4_request")
            self._keys[cache_key] = key
        return key

    def _scope(self, unsigned: str, authorization: str) -> _Scope:
        """What the Authorization header says besides its signature (``unsigned``), parsed and
        checked once (a client sends the same credential scope and signed headers all day)."""
        scope = self._scopes.get(unsigned)
        if scope is None:
            scope = self._parse_scope(authorization)
            if len(self._scopes) > 256:
                self._scopes.clear()
            self._scopes[unsigned] = scope
        return scope

    def _parse_scope(self, authorization: str) -> _Scope:
        algorithm, _, rest = authorization.partition(" ")
        if algorithm != ALGORITHM:
            raise AuthFailure(INCOMPLETE, f"Unsupported authorization type: {algorithm or '(none)'}")
        parameters = dict(_PARAMETER.findall(rest))
        missing = [name for name in ("Credential", "SignedHeaders", "Signature") if not parameters.get(name)]
        if missing:
            raise AuthFailure(
                INCOMPLETE, " ".join(f"Authorization header requires '{name}' parameter." for name in missing)
            )
        parts = parameters["Credential"].split("/")
        if len(parts) != 5:
            raise AuthFailure(INCOMPLETE, f"Credential should be scoped to 5 parts, not {len(parts)}.")
        access_key_id, date, region, service, terminator = parts
        secret = self._secrets.get(access_key_id)
        if secret is None:
            raise AuthFailure(UNRECOGNIZED, "The security token included in the request is invalid.")
        signed_headers = tuple(parameters["SignedHeaders"].split(";"))
        # Checked only once the request's timestamp is known, to keep AWS's order of complaints.
        later: AuthFailure | None = None
        if region != self._region:
            later = AuthFailure(INVALID, f"Credential should be scoped to a valid region, not '{region}'.")
        elif service not in self._services:
            later = AuthFailure(INVALID, f"Credential should be scoped to correct service: '{service}'.")
        elif "host" not in signed_headers:
            later = AuthFailure(INVALID, "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")
        bad_terminator = None
        if terminator != "aws4_request":
            bad_terminator = AuthFailure(
                INVALID, f"Credential should be scoped with a valid terminator: 'aws4_request', not '{terminator}'."
            )
        return _Scope(
            Caller(access_key_id, region, service),
            date,
            f"{date}/{region}/{service}/aws4_request",
            signed_headers,
            parameters["SignedHeaders"],
            parameters["Signature"],
            self._signing_key(secret, date, region, service),
            bad_terminator,
            later,
        )

    def verify(self, method: str, raw_path: str, raw_query: str, header_values: HeaderValues, body: bytes) -> Caller:
        """Return the caller of a correctly signed request, or raise :class:`AuthFailure`."""
        authorization = header_values("authorization")
        if not authorization:
            raise AuthFailure(MISSING_TOKEN, "Missing Authentication Token")
        text = authorization[0].strip()
        # The signature is what changes from request to request: the rest is looked up.
        head, marker, signature = text.rpartition("Signature=")
        if marker and len(signature) == 64 and "," not in signature:
            scope = self._scope(head, text)
        else:
            scope = self._parse_scope(text)
            signature = scope.signature
        timestamp = _timestamp(header_values)
        if scope.bad_terminator is not None:
            raise scope.bad_terminator
        if scope.date != timestamp[:8]:
            raise AuthFailure(
                INVALID,
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
                f"'{scope.date}' != '{timestamp[:8]}', from '{timestamp}'.",
            )
        if scope.later is not None:
            raise scope.later
        self._check_clock(timestamp)

        lines = [method.upper(), canonical_uri(raw_path), canonical_query(raw_query) if raw_query else ""]
        for name in scope.signed_headers:
            values = header_values(name)
            if len(values) == 1:
                lines.append(f"{name}:{' '.join(values[0].split())}")
            else:
                lines.append(f"{name}:{','.join(' '.join(v.split()) for v in values)}")
        payload_hash = hashlib.sha256(body).hexdigest() if body else EMPTY_SHA256
        # The body is always part of the signature: ``UNSIGNED-PAYLOAD`` is S3's option, and AWS IoT's
        # APIs sign the body (botocore never sends it for them), so a declared hash that is not the
        # body's, that one included, is a signature that does not match (UNCONFIRMED wording).
        declared = header_values("x-amz-content-sha256")
        if declared and declared[0] != payload_hash:
            raise AuthFailure(INVALID, MISMATCH_MESSAGE)
        lines.append("")  # the canonical headers end with a newline of their own
        lines.append(scope.signed_headers_text)
        lines.append(payload_hash)
        canonical_request = "\n".join(lines)
        string_to_sign = (
            f"{ALGORITHM}\n{timestamp}\n{scope.credential_scope}\n"
            f"{hashlib.sha256(canonical_request.encode()).hexdigest()}"
        )
        expected = hmac.digest(scope.key, string_to_sign.encode(), "sha256").hex()  # one-shot C path
        if not hmac.compare_digest(expected, signature):
            raise AuthFailure(INVALID, MISMATCH_MESSAGE)
        return scope.caller

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
