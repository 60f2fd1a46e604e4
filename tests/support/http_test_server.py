#!/usr/bin/env python3
"""Loopback HTTP server for the HTTP/AWS tests. Binds 127.0.0.1 on a free port and prints the
port on the first stdout line. HTTP/1.1 with keep-alive. Routes:
  /echo            200; body "METHOD BODY"; X-Client-Port = the peer's port (keep-alive check),
                   X-Seen-<header> for each received header
  /sleep?ms=N      sleeps N ms, then 200
  /status?code=N   answers status N with an empty body
  /latest/...      IMDSv2: PUT api/token, GET meta-data/iam/security-credentials/[role]
  POST /           STS: Action=AssumeRole (needs a SigV4 Authorization scoped to sts)
"""
import json
import sys
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

IMDS_TOKEN = "imds-token-abcdef"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body=b"", headers=None):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def handle_any(self):
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        data = self.body()
        if url.path == "/echo":
            headers = {"X-Client-Port": str(self.client_address[1])}
            for name, value in self.headers.items():
                headers["X-Seen-" + name] = value
            return self.reply(200, self.command.encode() + b" " + data, headers)
        if url.path == "/sleep":
            time.sleep(int(query.get("ms", "0")) / 1000.0)
            return self.reply(200, "slept")
        if url.path == "/status":
            return self.reply(int(query.get("code", "200")))
        if url.path.startswith("/latest/"):
            return self.imds(url.path)
        if url.path == "/" and self.command == "POST":
            return self.sts(urllib.parse.parse_qs(data.decode()))
        return self.reply(404, "no route")

    def imds(self, path):
        if path == "/latest/api/token":
            if self.command != "PUT" or not self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
                return self.reply(400)
            return self.reply(200, IMDS_TOKEN)
        if self.headers.get("X-aws-ec2-metadata-token") != IMDS_TOKEN:
            return self.reply(401)
        base = "/latest/meta-data/iam/security-credentials/"
        if path == base:
            return self.reply(200, "test-role\n")
        if path == base + "test-role":
            return self.reply(200, json.dumps({
                "Code": "Success", "Type": "AWS-HMAC", "AccessKeyId": "ASIAIMDSEXAMPLE",
                "SecretAccessKey": "imds-secret-key-value", "Token": "imds-session-token-value",
                "Expiration": "2099-01-01T00:00:00Z"}))
        return self.reply(404)

    def sts(self, form):
        auth = self.headers.get("Authorization", "")
        if "/sts/aws4_request" not in auth or "Credential=AKIDSOURCE/" not in auth:
            return self.reply(403, "<ErrorResponse><Error><Type>Sender</Type>"
                                   "<Code>SignatureDoesNotMatch</Code><Message>bad auth</Message>"
                                   "</Error><RequestId>rid-sts-1</RequestId></ErrorResponse>",
                              {"Content-Type": "text/xml"})
        if form.get("Action") != ["AssumeRole"] or form.get("Version") != ["2011-06-15"]:
            return self.reply(400, "<ErrorResponse><Error><Code>InvalidAction</Code></Error>"
                                   "</ErrorResponse>")
        role = form["RoleArn"][0]
        session = form["RoleSessionName"][0]
        return self.reply(200, f"""<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <AssumedRoleUser><Arn>{role}/{session}</Arn><AssumedRoleId>AROA:{session}</AssumedRoleId></AssumedRoleUser>
    <Credentials>
      <AccessKeyId>ASIAROLEEXAMPLE</AccessKeyId>
      <SecretAccessKey>role-secret-key-value</SecretAccessKey>
      <SessionToken>role-session-token-value</SessionToken>
      <Expiration>2099-01-01T00:00:00Z</Expiration>
    </Credentials>
  </AssumeRoleResult>
  <ResponseMetadata><RequestId>rid-assume-1</RequestId></ResponseMetadata>
</AssumeRoleResponse>""", {"Content-Type": "text/xml", "x-amzn-RequestId": "rid-assume-1"})

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = handle_any


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
