"""Independent AWS Signature Version 4 verifier (hmac/hashlib only).

The server recomputes the signature from the request as received: the canonical request is built
from the method, the path, the query string, the headers named in ``SignedHeaders`` and the
SHA-256 of the exact body bytes. Both header auth (``Authorization: AWS4-HMAC-SHA256 ...``) and
query (presigned) auth are accepted.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Callable
from urllib.parse import parse_qsl, quote, unquote

from .wire import ApiError

ALGORITHM = "AWS4-HMAC-SHA256"
_AUTH_RE = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=([^,\s]+)\s*,\s*SignedHeaders=([^,\s]+)\s*,\s*Signature=([0-9a-fA-F]+)\s*$")


@dataclass
class Credential:
    access_key_id: str
    secret_access_key: str
    session_token: str | None = None
    expires: float | None = None       # epoch seconds, temporary credentials only
    arn: str = "arn:aws:iam::123456789012:user/emulator"
    account: str = "123456789012"
    user_id: str = "AIDAEMULATOREXAMPLE"


@dataclass
class Verified:
    credential: Credential
    region: str
    service: str


def _uri_encode(text: str, safe: str = "-_.~") -> str:
    return quote(text, safe=safe)


def canonical_query(raw_query: str, drop_signature: bool) -> str:
    pairs = parse_qsl(raw_query, keep_blank_values=True)
    if drop_signature:
        pairs = [(k, v) for k, v in pairs if k != "X-Amz-Signature"]
    encoded = sorted((_uri_encode(k), _uri_encode(v)) for k, v in pairs)
    return "&".join(f"{k}={v}" for k, v in encoded)


def _canonical_header_value(value: str) -> str:
    return re.sub(r"\s+", " ", value.strip())


def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = ("AWS4" + secret).encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def _parse_amz_date(value: str) -> dt.datetime:
    try:
        return dt.datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.timezone.utc)
    except ValueError:
        raise ApiError("IncompleteSignature",
                       f"Date must be in ISO-8601 'basic format'. Got '{value}'.") from None


class Verifier:
    """Checks a request's SigV4 signature against the emulator's credential store."""

    def __init__(self, lookup: Callable[[str], Credential | None],
                 valid_regions: Callable[[], set[str]], max_skew_s: Callable[[], float]) -> None:
        self._lookup = lookup
        self._valid_regions = valid_regions
        self._max_skew_s = max_skew_s

    def verify(self, method: str, path: str, raw_query: str, headers: dict[str, str],
               body: bytes, expected_service: str, now: float) -> Verified:
        """``headers`` keys must be lower-case. Raises ``ApiError`` on any failure."""
        query = dict(parse_qsl(raw_query, keep_blank_values=True))
        auth = headers.get("authorization")
        if auth:
            match = _AUTH_RE.match(auth.strip())
            if not match:
                raise ApiError("IncompleteSignature",
                               "Authorization header requires 'Credential', 'SignedHeaders' "
                               "and 'Signature' parameters of the AWS4-HMAC-SHA256 algorithm.")
            credential, signed, signature = match.groups()
            amz_date = headers.get("x-amz-date")
            token = headers.get("x-amz-security-token")
            presigned = False
        elif "X-Amz-Signature" in query:
            if query.get("X-Amz-Algorithm") != ALGORITHM:
                raise ApiError("IncompleteSignature", "Unsupported X-Amz-Algorithm")
            credential = query.get("X-Amz-Credential", "")
            signed = query.get("X-Amz-SignedHeaders", "")
            signature = query["X-Amz-Signature"]
            amz_date = query.get("X-Amz-Date")
            token = query.get("X-Amz-Security-Token")
            presigned = True
        else:
            raise ApiError("MissingAuthenticationToken",
                           "Request is missing Authentication Token")
        if not amz_date:
            raise ApiError("IncompleteSignature",
                           "Authorization header requires existence of either a 'X-Amz-Date' "
                           "or a 'Date' header.")
        scope = credential.split("/")
        if len(scope) != 5 or scope[4] != "aws4_request":
            raise ApiError("IncompleteSignature",
                           f"Credential should have 5 parts separated by '/': {credential}")
        access_key, date, region, service, _ = scope
        signed_names = signed.split(";")
        if "host" not in signed_names:
            raise ApiError("IncompleteSignature", "'Host' must be a 'SignedHeader' in the "
                           "AWS Authorization.")
        cred = self._lookup(access_key)
        if cred is None:
            raise ApiError("AuthFailure", "AWS was not able to validate the provided access "
                           "credentials")
        request_time = _parse_amz_date(amz_date)
        skew = abs(request_time.timestamp() - now)
        if skew > self._max_skew_s():
            raise ApiError("RequestExpired",
                           f"Request has expired. Timestamp date is {amz_date}", status=400)
        if presigned:
            try:
                lifetime = int(query.get("X-Amz-Expires", "900"))
            except ValueError:
                raise ApiError("AuthFailure", "X-Amz-Expires must be an integer") from None
            if now > request_time.timestamp() + lifetime:
                raise ApiError("RequestExpired", "Request has expired (X-Amz-Expires)", status=400)
        if cred.expires is not None and now > cred.expires:
            raise ApiError("RequestExpired", "The security token included in the request "
                           "is expired", status=400)
        if cred.session_token is not None and token != cred.session_token:
            raise ApiError("AuthFailure", "The security token included in the request is "
                           "invalid")
        if date != amz_date[:8]:
            raise ApiError("SignatureDoesNotMatch",
                           f"Date in Credential scope does not match YYYYMMDD from ISO-8601 "
                           f"version of date from HTTP: '{date}' != '{amz_date[:8]}'")
        if service != expected_service:
            raise ApiError("SignatureDoesNotMatch",
                           f"Credential should be scoped to correct service: '{expected_service}'.")
        if region not in self._valid_regions():
            raise ApiError("AuthFailure", f"Credential should be scoped to a valid region, "
                           f"not '{region}'.")
        for name in signed_names:
            if name not in headers:
                raise ApiError("SignatureDoesNotMatch",
                               f"The request signature we calculated does not match: signed "
                               f"header '{name}' is missing")
        canonical = "\n".join([
            method.upper(),
            _uri_encode(unquote(path) or "/", safe="/-_.~"),
            canonical_query(raw_query, drop_signature=presigned),
            "".join(f"{n}:{_canonical_header_value(headers[n])}\n" for n in signed_names),
            signed,
            hashlib.sha256(body).hexdigest(),     # non-S3 presigning hashes the body too
        ])
        string_to_sign = "\n".join([
            ALGORITHM, amz_date, f"{date}/{region}/{service}/aws4_request",
            hashlib.sha256(canonical.encode()).hexdigest(),
        ])
        key = signing_key(cred.secret_access_key, date, region, service)
        expected = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature.lower()):
            raise ApiError("SignatureDoesNotMatch",
                           "The request signature we calculated does not match the signature "
                           "you provided. Check your AWS Secret Access Key and signing method.")
        return Verified(cred, region, service)
