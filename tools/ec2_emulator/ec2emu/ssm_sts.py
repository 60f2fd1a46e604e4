"""SSM (JSON 1.1: GetParameter, GetParameters for public AMI parameters) and STS (Query:
AssumeRole, GetCallerIdentity)."""
from __future__ import annotations

import json
import re
import secrets
import string
from typing import Any
from xml.sax.saxutils import escape

from . import catalogue
from .sigv4 import Credential
from .state import Store, iso
from .wire import ApiError, Params, check_known

STS_NS = "https://sts.amazonaws.com/doc/2011-06-15/"


# -- SSM -----------------------------------------------------------------------------------
def _ssm_name(raw: Any) -> str:
    if not isinstance(raw, str) or not raw:
        raise ApiError("ValidationException", "1 validation error detected: Value at 'name' "
                       "failed to satisfy constraint: Member must not be null")
    name = raw
    if name.startswith("arn:"):
        name = "/" + name.split(":parameter/", 1)[-1]
    return name.split(":", 1)[0]          # drop a ":version" / ":label" selector


def _ssm_parameter(region: str, raw_name: str) -> dict | None:
    name = _ssm_name(raw_name)
    img = catalogue.ssm_parameter(region, name)
    if img is None:
        return None
    return {"Name": raw_name, "Type": "String", "Value": img.image_id(region), "Version": 42,
            "LastModifiedDate": 1792060800.0,
            "ARN": f"arn:aws:ssm:{region}::parameter{name}", "DataType": "text"}


def ssm_call(region: str, target: str, body: bytes) -> dict:
    try:
        request = json.loads(body or b"{}")
    except ValueError:
        raise ApiError("SerializationException", "Malformed JSON body") from None
    if not isinstance(request, dict):
        raise ApiError("SerializationException", "Expected a JSON object")
    if target == "GetParameter":
        param = _ssm_parameter(region, request.get("Name"))
        if param is None:
            raise ApiError("ParameterNotFound", "")
        return {"Parameter": param}
    if target == "GetParameters":
        names = request.get("Names")
        if not isinstance(names, list) or not names or len(names) > 10:
            raise ApiError("ValidationException", "1 validation error detected: Value at 'names' "
                           "failed to satisfy constraint: Member must have length between 1 and 10")
        found, invalid = [], []
        for name in names:
            param = _ssm_parameter(region, name)
            (found if param else invalid).append(param or name)
        return {"Parameters": found, "InvalidParameters": invalid}
    raise ApiError("UnknownOperationException", f"Unknown operation {target}")


SSM_AUTH_CODES = {"AuthFailure": "UnrecognizedClientException",
                  "SignatureDoesNotMatch": "InvalidSignatureException",
                  "IncompleteSignature": "IncompleteSignatureException",
                  "RequestExpired": "InvalidSignatureException",
                  "MissingAuthenticationToken": "MissingAuthenticationTokenException"}


# -- STS -------------------------------------------------------------------------------------------
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::(\d{12}):role/(.+)$")


def _random(alphabet: str, n: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))


def sts_call(store: Store, cred: Credential, action: str, p: Params, now: float) -> dict:
    if action == "GetCallerIdentity":
        check_known(p, set())
        return {"GetCallerIdentityResult": {"Arn": cred.arn, "UserId": cred.user_id,
                                            "Account": cred.account}}
    if action == "AssumeRole":
        check_known(p, {"RoleArn", "RoleSessionName", "DurationSeconds", "ExternalId", "Policy",
                        "PolicyArns", "SerialNumber", "TokenCode", "Tags", "TransitiveTagKeys",
                        "SourceIdentity"})
        role_arn = p.require("RoleArn")
        session = p.require("RoleSessionName")
        duration = p.get_int("DurationSeconds", 3600, 900, 43200)
        match = _ROLE_ARN.match(role_arn)
        if not match or not re.match(r"^[\w+=,.@-]{2,64}$", session):
            raise ApiError("ValidationError", f"Invalid RoleArn or RoleSessionName: {role_arn}")
        allowed = store.config.get("assumable_roles")
        if allowed is not None and role_arn not in allowed:
            raise ApiError("AccessDenied", f"User: {cred.arn} is not authorized to perform: "
                           f"sts:AssumeRole on resource: {role_arn}")
        account, role = match.group(1), match.group(2).split("/")[-1]
        role_id = "AROA" + _random(string.ascii_uppercase + string.digits, 17)
        entry = {"access_key_id": "ASIA" + _random(string.ascii_uppercase + string.digits, 16),
                 "secret_access_key": _random(string.ascii_letters + string.digits + "/+", 40),
                 "session_token": _random(string.ascii_letters + string.digits + "/+", 120),
                 "expires": now + duration, "account": account,
                 "arn": f"arn:aws:sts::{account}:assumed-role/{role}/{session}",
                 "user_id": f"{role_id}:{session}"}
        with store.lock:
            store.data["sts_credentials"] = [
                c for c in store.data["sts_credentials"] if c["expires"] > now] + [entry]
        store.save()
        return {"AssumeRoleResult": {
            "Credentials": {"AccessKeyId": entry["access_key_id"],
                            "SecretAccessKey": entry["secret_access_key"],
                            "SessionToken": entry["session_token"],
                            "Expiration": iso(entry["expires"])},
            "AssumedRoleUser": {"AssumedRoleId": entry["user_id"], "Arn": entry["arn"]}}}
    raise ApiError("InvalidAction", f"Could not find operation {action} for version 2011-06-15")


def sts_error_xml(code: str, message: str, request_id: str) -> bytes:
    kind = "Receiver" if code.startswith(("Internal", "Service")) else "Sender"
    return (f'<ErrorResponse xmlns="{STS_NS}"><Error><Type>{kind}</Type>'
            f"<Code>{escape(code)}</Code><Message>{escape(message)}</Message></Error>"
            f"<RequestId>{escape(request_id)}</RequestId></ErrorResponse>").encode()

