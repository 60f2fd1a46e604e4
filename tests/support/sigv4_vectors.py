#!/usr/bin/env python3
"""Writes SigV4 test vectors, signed by Debian's botocore, in the layout of AWS's test suite.

Usage: sigv4_vectors.py OUT_DIR

Each case gets OUT_DIR/<case>/<case>.{req,creq,sts,authz} and a context.json (the newer suite's
format: credentials, region, service, timestamp), so tests/aws/sigv4_conformance_test.cc runs them
exactly like the official vectors. It uses these when $SIGV4_TESTSUITE_DIR names no directory of
official vectors, so the suite passes in a clone that is not next to ../shared.
The inputs cover what the official cases cover: query ordering and encoding, UTF-8, repeated
and untrimmed headers, header name and value case, bodies, session tokens and path normalisation.
"""
import base64
import json
import os
import sys
from urllib.parse import quote

from sigv4_oracle import sign

ACCESS_KEY = "AKIDEXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
TIMESTAMP = "2015-08-30T12:36:00Z"
AMZ_DATE = "20150830T123600Z"
HOST = "example.amazonaws.com"
FORM = "application/x-www-form-urlencoded; charset=utf-8"
TOKEN = "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267"

# name: (method, path, query pairs, extra headers, body, token, region, service)
CASES = {
    "gen-get-vanilla": ("GET", "/", [], [], "", None, "us-east-1", "service"),
    "gen-get-query": ("GET", "/", [("Param2", "value2"), ("Param1", "value1")], [], "", None,
                      "us-east-1", "service"),
    "gen-get-query-order-value": ("GET", "/", [("Param1", "value2"), ("Param1", "Value1")], [],
                                  "", None, "us-east-1", "service"),
    "gen-get-query-empty-value": ("GET", "/", [("Param1", "")], [], "", None, "us-east-1",
                                  "service"),
    "gen-get-query-unreserved": ("GET", "/", [("-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabc"
                                               "defghijklmnopqrstuvwxyz", "-._~09AZaz")],
                                 [], "", None, "us-east-1", "service"),
    "gen-get-query-reserved": ("GET", "/", [("a b", "c+d&e=f/g?h")], [], "", None,
                               "us-east-1", "service"),
    "gen-get-utf8-query": ("GET", "/", [("\u1234", "bar")], [], "", None, "us-east-1",
                           "service"),
    "gen-get-header-value-order": ("GET", "/", [], [("My-Header1", "value4"),
                                                    ("My-Header1", "value1"),
                                                    ("My-Header1", "value3"),
                                                    ("My-Header1", "value2")],
                                   "", None, "us-east-1", "service"),
    "gen-get-header-value-trim": ("GET", "/", [], [("My-Header1", " value1"),
                                                   ("My-Header2", ' "a   b   c"')],
                                  "", None, "us-east-1", "service"),
    "gen-post-header-key-case": ("POST", "/", [], [("my-HEADER1", "value1")], "", None,
                                 "us-east-1", "service"),
    "gen-post-header-value-case": ("POST", "/", [], [("My-Header1", "VALUE1")], "", None,
                                   "us-east-1", "service"),
    "gen-post-vanilla": ("POST", "/", [], [], "", None, "us-east-1", "service"),
    "gen-post-vanilla-query": ("POST", "/", [("Param1", "value1")], [], "", None, "us-east-1",
                               "service"),
    "gen-post-x-www-form-urlencoded": ("POST", "/", [], [("Content-Type", FORM)],
                                       "Param1=value1", None, "us-east-1", "service"),
    "gen-get-session-token": ("GET", "/", [], [], "", TOKEN, "us-east-1", "service"),
    "gen-ec2-describe": ("POST", "/", [], [("Content-Type", FORM)],
                         "Action=DescribeInstances&Version=2016-11-15", TOKEN, "eu-west-1",
                         "ec2"),
    "gen-normalize-relative": ("GET", "/example/..", [], [], "", None, "us-east-1", "service"),
    "gen-normalize-relative-relative": ("GET", "/example1/example2/../..", [], [], "", None,
                                        "us-east-1", "service"),
    "gen-normalize-slash-dot-slash": ("GET", "/./", [], [], "", None, "us-east-1", "service"),
    "gen-normalize-slashes": ("GET", "//example//", [], [], "", None, "us-east-1", "service"),
    "gen-normalize-space": ("GET", "/example space/", [], [], "", None, "us-east-1",
                            "service"),
    "gen-normalize-special-character": ("GET", "/example*", [], [], "", None, "us-east-1",
                                        "service"),
}


def write(path, text):
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(text)


def main():
    out = sys.argv[1]
    for name, (method, path, query, headers, body, token, region, service) in CASES.items():
        all_headers = [("Host", HOST)] + headers + [("X-Amz-Date", AMZ_DATE)]
        if token:
            all_headers.append(("X-Amz-Security-Token", token))
        signed = sign({"method": method, "url": "https://" + HOST + path,
                       "headers": [list(h) for h in headers],
                       "params": [list(p) for p in query],
                       "body_b64": base64.b64encode(body.encode()).decode(),
                       "access_key": ACCESS_KEY, "secret_key": SECRET_KEY, "token": token,
                       "region": region, "service": service, "timestamp": AMZ_DATE})
        target = path
        if query:
            target += "?" + "&".join(quote(k, safe="") + "=" + quote(v, safe="")
                                     for k, v in query)
        req = "%s %s HTTP/1.1\n%s" % (method, target,
                                      "\n".join("%s:%s" % h for h in all_headers))
        if body:
            req += "\n\n" + body
        case_dir = os.path.join(out, name)
        os.makedirs(case_dir, exist_ok=True)
        write(os.path.join(case_dir, name + ".req"), req)
        write(os.path.join(case_dir, name + ".creq"), signed["canonical_request"])
        write(os.path.join(case_dir, name + ".sts"), signed["string_to_sign"])
        write(os.path.join(case_dir, name + ".authz"), signed["authorization"])
        credentials = {"access_key_id": ACCESS_KEY, "secret_access_key": SECRET_KEY}
        if token:
            credentials["token"] = token
        write(os.path.join(case_dir, "context.json"),
              json.dumps({"credentials": credentials, "region": region, "service": service,
                          "timestamp": TIMESTAMP, "normalize": True, "sign_body": False},
                         indent=2))


if __name__ == "__main__":
    main()
