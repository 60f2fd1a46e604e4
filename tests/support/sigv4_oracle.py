#!/usr/bin/env python3
"""SigV4 oracle for tests/aws/sigv4_differential_test.cc: signs requests with botocore.

Reads JSON lines on stdin, one request each:
  {"method", "url", "headers": [[name, value], ...], "params": [[key, value], ...],
   "body_b64", "access_key", "secret_key", "token", "region", "service", "timestamp"}
and writes one JSON line per request: {"authorization", "canonical_request", "string_to_sign"}.
The timestamp is fixed by the caller, so botocore's add_auth() (which reads the clock) is
replayed step by step with the same methods it calls.
"""
import base64
import json
import sys

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


def sign(case):
    request = AWSRequest(method=case["method"], url=case["url"],
                         data=base64.b64decode(case["body_b64"]),
                         params=[tuple(p) for p in case["params"]] or None)
    for name, value in case["headers"]:
        request.headers[name] = value  # HTTPHeaders appends: repeats are kept in order
    credentials = Credentials(case["access_key"], case["secret_key"], case["token"] or None)
    auth = SigV4Auth(credentials, case["service"], case["region"])
    request.context["timestamp"] = case["timestamp"]
    auth._modify_request_before_signing(request)
    canonical = auth.canonical_request(request)
    string_to_sign = auth.string_to_sign(request, canonical)
    signature = auth.signature(string_to_sign, request)
    auth._inject_signature_to_request(request, signature)
    return {"authorization": request.headers["Authorization"],
            "canonical_request": canonical,
            "string_to_sign": string_to_sign}


def main():
    for line in sys.stdin:
        if line.strip():
            sys.stdout.write(json.dumps(sign(json.loads(line))) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
