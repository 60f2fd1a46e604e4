"""HTTP front end: routes EC2/STS Query requests, SSM JSON 1.1 requests and the unsigned
``/_emulator/*`` control API; applies SigV4 verification, injected latency and faults, and
keeps the call log."""
from __future__ import annotations

import json
import time
import traceback
import uuid
from typing import Any
from urllib.parse import parse_qsl

from . import ec2, instances, placement, ssm_sts  # noqa: F401  (they register their handlers)
from .sigv4 import Verifier
from .common import Dropped, HandlerBase, ServerBase
from .state import Store
from .wire import ApiError, Params, ec2_error_xml, to_xml

STS_ACTIONS = {"AssumeRole", "GetCallerIdentity", "GetSessionToken",
               "AssumeRoleWithWebIdentity", "DecodeAuthorizationMessage"}
_THROTTLE = {"ec2": ("RequestLimitExceeded", "Request limit exceeded.", 503),
             "ssm": ("ThrottlingException", "Rate exceeded", 400),
             "sts": ("Throttling", "Rate exceeded", 400)}


class _Answered(Exception):
    """A fault already wrote a raw answer."""



class EmulatorServer(ServerBase):
    def __init__(self, address: tuple[str, int], store: Store) -> None:
        super().__init__(address, Handler, store)
        self.verifier = Verifier(store.lookup_credential, store.valid_regions,
                                 lambda: float(store.config["max_clock_skew_s"]))


class Handler(HandlerBase):
    def version_string(self) -> str:
        return "AmazonEC2"
    server: EmulatorServer

    # -- plumbing ------------------------------------------------------------------------
    def _headers_lower(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for name, value in self.headers.items():
            key = name.lower()
            out[key] = f"{out[key]},{value}" if key in out else value
        return out

    def _send(self, status: int, body: bytes, content_type: str,
              extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _dispatch(self, method: str) -> None:
        path, _, query = self.path.partition("?")
        body = self._body()
        if path.startswith("/_emulator/"):
            self._control(method, path[len("/_emulator/"):], query, body)
            return
        try:
            self._api(method, path, query, body)
        except Dropped:
            self._drop()

    # -- AWS APIs --------------------------------------------------------------------------------
    def _api(self, method: str, path: str, query: str, body: bytes) -> None:
        store = self.server.store
        headers = self._headers_lower()
        request_id = str(uuid.uuid4())
        target = headers.get("x-amz-target", "")
        params: dict[str, str] = dict(parse_qsl(query, keep_blank_values=True))
        if target.startswith("AmazonSSM."):
            service, action = "ssm", target.split(".", 1)[1]
        else:
            if "x-www-form-urlencoded" in headers.get("content-type", "") or method == "POST":
                params.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
            action = params.get("Action", "")
            service = "sts" if action in STS_ACTIONS else "ec2"
        entry: dict[str, Any] = {"time": time.time(), "service": service, "action": action,
                                 "region": None, "status": 200, "error": None, "fault": None,
                                 "request_id": request_id,
                                 "client_token": params.get("ClientToken")}
        latency = float(store.config.get("latency_ms") or 0) / 1000.0
        if latency > 0:
            time.sleep(latency)
        logged = False
        try:
            try:
                verified = self.server.verifier.verify(method, path, query, headers, body,
                                                       service, time.time())
            except ApiError as err:
                if service == "ssm":
                    err = ApiError(ssm_sts.SSM_AUTH_CODES.get(err.code, err.code), err.message, 400)
                elif service == "sts" and err.code == "AuthFailure":
                    err = ApiError("InvalidClientTokenId", "The security token included in the "
                                   "request is invalid.", 403)
                raise err
            entry["region"] = verified.region
            fault = store.take_fault(service, action, verified.region)
            drop_after = self._apply_fault(fault, service, entry)
            result = self._perform(service, action, params, body, verified)
            if drop_after:
                raise Dropped()
            # Logged before the answer goes out: a client that reads /_emulator/calls as soon as
            # its call returned must find it there.
            store.log_call(entry)
            logged = True
            self._answer(service, action, result, request_id)
        except ApiError as err:
            entry["status"], entry["error"] = err.status, err.code
            store.log_call(entry)
            self._error(service, err, request_id)
        except _Answered:
            return
        except Dropped:
            entry["status"], entry["error"] = 0, "dropped"
            store.log_call(entry)
            raise
        except Exception:  # an emulator bug: answer 500 rather than look like a dropped line
            traceback.print_exc()
            err = ApiError("InternalError", "emulator bug (see its stderr)", 500)
            entry["status"], entry["error"] = 500, "InternalError"  # the logged entry too
            if not logged:
                store.log_call(entry)
            self._error(service, err, request_id)

    def _apply_fault(self, fault: dict | None, service: str, entry: dict) -> bool:
        if fault is None:
            return False
        kind = str(fault.get("kind", "http500"))
        entry["fault"] = kind
        if fault.get("latency_ms"):
            time.sleep(float(fault["latency_ms"]) / 1000.0)
        if kind == "latency":
            return False
        if kind == "drop_before":
            entry["status"], entry["error"] = 0, "dropped"
            raise Dropped()
        if kind == "drop_after":
            return True
        if kind in ("html502", "empty500"):
            status = 502 if kind == "html502" else 500
            entry["status"], entry["error"] = status, kind
            body = b"<html><body><h1>502 Bad Gateway</h1></body></html>" if status == 502 else b""
            self.server.store.log_call(entry)
            self._send(status, body, "text/html")
            raise _Answered()
        if kind == "throttle":
            code, message, status = _THROTTLE[service]
        elif kind == "http500":
            code, message, status = ("InternalServerError" if service == "ssm" else
                                     "InternalError"), "An internal error has occurred", 500
        elif kind == "http503":
            code, message, status = "Unavailable", "The service is unavailable", 503
        else:
            code, message, status = kind, fault.get("message") or f"{kind} (injected)", None
        raise ApiError(code, fault.get("message") or message, fault.get("status") or status)

    def _perform(self, service: str, action: str, params: dict[str, str], body: bytes,
                 verified: Any) -> Any:
        store = self.server.store
        if service == "ssm":
            return ssm_sts.ssm_call(verified.region, action, body)
        p = Params(params)
        if service == "sts":
            return ssm_sts.sts_call(store, verified.credential, action, p, time.time())
        if not action:
            raise ApiError("MissingParameter", "The request must contain the parameter Action")
        handler = ec2.HANDLERS.get(action)
        if handler is None:
            raise ApiError("InvalidAction",
                           f"The action {action} is not valid for this web service.")
        if not params.get("Version"):
            raise ApiError("MissingParameter", "The request must contain the parameter Version")
        with store.lock:
            result = handler(ec2.Ctx(store, verified.region, time.time()), p)
            if action in ec2.MUTATING:
                store.save()
        return result

    def _answer(self, service: str, action: str, result: Any, request_id: str) -> None:
        if service == "ssm":
            self._send(200, json.dumps(result).encode(), "application/x-amz-json-1.1",
                       {"x-amzn-RequestId": request_id})
        elif service == "sts":
            body = {**result, "ResponseMetadata": {"RequestId": request_id}}
            self._send(200, to_xml(f"{action}Response", body, ssm_sts.STS_NS), "text/xml",
                       {"x-amzn-RequestId": request_id})
        else:
            body = {"requestId": request_id, **result}
            self._send(200, to_xml(f"{action}Response", body), "text/xml;charset=UTF-8",
                       {"x-amzn-RequestId": request_id})

    def _error(self, service: str, err: ApiError, request_id: str) -> None:
        if service == "ssm":
            payload = json.dumps({"__type": err.code, "message": err.message}).encode()
            self._send(err.status, payload, "application/x-amz-json-1.1",
                       {"x-amzn-RequestId": request_id, "x-amzn-ErrorType": err.code})
        elif service == "sts":
            self._send(err.status, ssm_sts.sts_error_xml(err.code, err.message, request_id),
                       "text/xml", {"x-amzn-RequestId": request_id})
        else:
            self._send(err.status, ec2_error_xml(err.code, err.message, request_id),
                       "text/xml;charset=UTF-8", {"x-amzn-RequestId": request_id})

    # -- control API ------------------------------------------------------------------------
    def _poweroff(self, iid: str) -> None:
        store = self.server.store
        with store.lock:
            region = next((r for r, inst in store.all_instances() if inst["id"] == iid), None)
            if region is None:
                self._json(404, {"error": f"unknown instance {iid}"})
                return
            try:
                result = instances.power_off(ec2.Ctx(store, region, time.time()), iid)
            except ApiError as err:
                self._json(409, {"error": err.code, "message": err.message})
                return
            store.save()
        self._json(200, result)

    def _json(self, status: int, value: Any) -> None:
        self._send(status, json.dumps(value, indent=1).encode(), "application/json")
