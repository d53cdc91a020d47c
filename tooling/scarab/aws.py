"""AWS sessions and clients for scarab: one place that honours --endpoint-url,
AWS_ENDPOINT_URL, AWS_PROFILE and the region, counts calls, and turns AWS errors
into advice.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlparse

import boto3
import botocore.exceptions
import botocore.parsers
from botocore.config import Config

from scarab.errors import ScarabError

T = TypeVar("T")

_READ_PREFIXES = ("Get", "List", "Describe", "Filter", "Head", "Lookup", "Test", "Scan", "Query")
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def is_mutating(operation: str) -> bool:
    """True for calls that change something (everything that is not a read)."""
    return not operation.startswith(_READ_PREFIXES)


def _dotted(endpoint_url: str | None) -> str | None:
    """The endpoint with a short IPv4 spelling (127.1) written out (127.0.0.1): S3
    emulators read a host that is not a full address as "<bucket>.<domain>"."""
    if not endpoint_url:
        return endpoint_url
    import socket
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(endpoint_url)
    host = parts.hostname or ""
    if not host or not all(c.isdigit() or c == "." for c in host) or host.count(".") == 3:
        return endpoint_url
    try:
        full = socket.inet_ntoa(socket.inet_aton(host))
    except OSError:
        return endpoint_url
    netloc = full + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def is_emulator(endpoint_url: str | None) -> bool:
    """True for any explicit endpoint: it is not AWS (moto, LocalStack, scarab serve's), so
    its state record is kept apart from the real stage's (see deploy/state.py)."""
    return bool(endpoint_url)


def is_loopback(endpoint_url: str | None) -> bool:
    """True when the endpoint is on this machine (127.0.0.1, 127.1, localhost, ::1): an
    emulator that runs the function in-process, so the `local` zip flavour fits it."""
    host = urlparse(endpoint_url).hostname if endpoint_url else None
    if not host:
        return False
    if host in _LOOPBACK:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:  # short forms inet_aton accepts: 127.1, 2130706433
        return ipaddress.ip_address(socket.inet_aton(host)).is_loopback
    except OSError:
        return False


# The region of a run against an emulator that names none (any region will do there).
EMULATOR_REGION = "us-east-1"


@dataclass
class CallLog:
    """Every AWS operation this session made, in order, as 'service.Operation'."""

    calls: list[str] = field(default_factory=list)

    @property
    def mutating(self) -> list[str]:
        return [c for c in self.calls if is_mutating(c.split(".", 1)[1])]

    def _record(self, model: Any, **_: Any) -> None:
        self.calls.append(f"{model.service_model.service_name}.{model.name}")


class Aws:
    """A boto3 session plus cached clients, all pointed at one endpoint and region."""

    def __init__(
        self,
        region: str | None,
        endpoint_url: str | None = None,
        session: boto3.Session | None = None,
        profile: str | None = None,
    ) -> None:
        """`region` None: the session's (the AWS profile's) region; on an emulator endpoint
        us-east-1 if that is unset too; against AWS, refused with advice (never a guess)."""
        self.endpoint_url = endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None
        if session is None:
            try:
                session = boto3.Session(
                    profile_name=profile or os.environ.get("AWS_PROFILE") or None,
                    region_name=region,
                )
            except botocore.exceptions.ProfileNotFound as exc:
                raise ScarabError(
                    f"{exc}. Check AWS_PROFILE or run 'aws configure --profile NAME'."
                ) from None
        region = region or session.region_name
        if not region:
            if not self.endpoint_url:
                raise ScarabError(
                    'No AWS region set. Pass --region, add region = "..." to scarab.toml,'
                    " set AWS_REGION, or set the profile's region ('aws configure set region"
                    " REGION'); scarab does not guess one."
                )
            region = EMULATOR_REGION
        self.region: str = region
        self.session = session
        self.log = CallLog()
        session.events.register("before-call", self.log._record)
        self._clients: dict[str, Any] = {}
        self._account_id: str | None = None
        self._config = Config(
            retries={"mode": "standard", "max_attempts": 6},
            connect_timeout=10,
            read_timeout=120,
        )

    @property
    def local(self) -> bool:
        """Not AWS: an explicit endpoint (see is_emulator)."""
        return is_emulator(self.endpoint_url)

    @property
    def loopback(self) -> bool:
        """An emulator on this machine (see is_loopback)."""
        return is_loopback(self.endpoint_url)

    def client(self, service: str, region: str | None = None) -> Any:
        """A client of `service` in this Aws's region (or `region`: IAM is global, so
        destroy looks for the role's users in other regions too)."""
        key = f"{service}@{region}" if region and region != self.region else service
        if key not in self._clients:
            config = self._config
            if service == "s3" and self.local:
                # An emulator is one host: bucket names go in the path, not the host name
                # (botocore would put them in front of "127.1", which resolves to nothing).
                config = config.merge(Config(s3={"addressing_style": "path"}))
            self._clients[key] = self.session.client(
                service,
                region_name=region or self.region,
                endpoint_url=_dotted(self.endpoint_url),
                config=config,
            )
        return self._clients[key]

    @property
    def account_id(self) -> str:
        if self._account_id is None:
            ident = call(self.client("sts").get_caller_identity)
            self._account_id = str(ident["Account"])
        return self._account_id

    @property
    def partition(self) -> str:
        return "aws-cn" if self.region.startswith("cn-") else "aws"


def error_code(exc: BaseException) -> str:
    if isinstance(exc, botocore.exceptions.ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def explain(exc: BaseException) -> ScarabError:
    """Turn a botocore failure into a sentence of advice."""
    if isinstance(exc, ScarabError):
        return exc
    creds = botocore.exceptions.NoCredentialsError | botocore.exceptions.PartialCredentialsError
    if isinstance(exc, creds):
        return ScarabError(
            "No AWS credentials found. Run 'aws configure' (or 'aws sso login'), set"
            " AWS_PROFILE, or use --local to deploy to the embedded emulator."
        )
    if isinstance(exc, botocore.exceptions.NoRegionError):
        return ScarabError("No AWS region set. Add region to scarab.toml or set AWS_REGION.")
    if isinstance(exc, botocore.exceptions.EndpointConnectionError):
        return ScarabError(
            f"Cannot reach {exc.kwargs.get('endpoint_url', 'the AWS endpoint')}. Check the"
            " region name, your network, or that the emulator at --endpoint-url is running."
        )
    if isinstance(exc, botocore.exceptions.ClientError):
        code = error_code(exc)
        op = exc.operation_name
        msg = _one_line(str(exc.response.get("Error", {}).get("Message", "")))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code.isdigit() or (not code and status):
            # botocore names an error by its HTTP status (or, for XML services, by
            # nothing) when the body is no AWS error: an HTML page or a web API's JSON,
            # i.e. an endpoint that is not AWS.
            return ScarabError(
                f"AWS {op} failed: the endpoint answered HTTP {code or status} with something"
                f" other than an AWS error.{_NOT_AWS}"
            )
        if code in {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"}:
            return ScarabError(
                f"AWS refused {op} (AccessDenied): {msg} Grant the deploying identity the"
                f" permission for {op} (see the action named in the message) and re-run."
            )
        if code in {"UnrecognizedClientException", "InvalidClientTokenId", "ExpiredToken"}:
            return ScarabError(
                f"AWS rejected the credentials ({code}). Refresh them ('aws sso login' or"
                " 'aws configure') and re-run."
            )
        return ScarabError(f"AWS {op} failed ({code}): {msg}")
    if isinstance(exc, KeyError):
        # Inside aws_errors: an answer without a field every AWS answer of the call has.
        field_name = str(exc.args[0]) if exc.args else "expected"
        return ScarabError(f"An AWS answer has no {field_name!r} field.{_NOT_AWS}")
    if isinstance(exc, botocore.parsers.ResponseParserError):
        return ScarabError(f"An AWS call got an answer that is not AWS's.{_NOT_AWS}")
    if isinstance(exc, botocore.exceptions.BotoCoreError):
        return ScarabError(f"AWS call failed: {_one_line(str(exc))}")
    return ScarabError(_one_line(str(exc)))


_NOT_AWS = (
    " If --endpoint-url or AWS_ENDPOINT_URL is set, check that it is AWS or an AWS emulator"
    " (the one `scarab serve` starts is reached with --local), not an API's URL."
)


def _one_line(text: str, limit: int = 300) -> str:
    """`text` on one line, cut at `limit` characters: error advice is a sentence, and an
    endpoint's answer may be a whole page."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


@contextlib.contextmanager
def aws_errors(advice: Mapping[str, str] | None = None) -> Iterator[None]:
    """Turn any AWS failure inside the block into advice (a ScarabError passes as is).

    `advice` maps AWS error codes to the command's own sentence for them, e.g. what to do
    when a resource it reads does not exist (`{"ResourceNotFoundException": "..."}`).
    """
    try:
        yield
    except ScarabError:
        raise
    except Exception as exc:
        code = error_code(exc)
        if advice and code in advice:
            raise ScarabError(advice[code]) from None
        raise explain(exc) from None


# First wait of the retry backoff, in seconds (doubles each attempt, capped at 10 s).
RETRY_BASE_DELAY = 1.0
# Conflicts that clear by themselves: retry instead of failing.
_TRANSIENT = {"ResourceConflictException", "ConflictException", "TooManyRequestsException"}


def call(
    fn: Callable[..., T],
    /,
    *,
    retry_codes: frozenset[str] = frozenset(),
    retry_message: str | tuple[str, ...] | None = None,
    attempts: int = 10,
    delay: float | None = None,
    **params: Any,
) -> T:
    """Call `fn(**params)`, waiting and retrying on transient conflicts.

    ResourceConflictException ("an update is in progress") and friends are retried
    with backoff; `retry_codes` / `retry_message` add call-specific transient errors
    such as a freshly created IAM role that Lambda cannot assume yet.
    """
    for attempt in range(attempts):
        try:
            return fn(**params)
        except botocore.exceptions.ClientError as exc:
            code = error_code(exc)
            message = str(exc.response.get("Error", {}).get("Message", ""))
            transient = code in _TRANSIENT or code in retry_codes
            if "already exist" in message:
                transient = False  # a real conflict (e.g. a duplicate id), not a busy resource
            wanted = (retry_message,) if isinstance(retry_message, str) else retry_message
            if wanted and any(m in message for m in wanted):
                transient = True
            if not transient or attempt == attempts - 1:
                raise
            base = RETRY_BASE_DELAY if delay is None else delay
            time.sleep(min(base * (2**attempt), 10.0))
    raise AssertionError("unreachable")
