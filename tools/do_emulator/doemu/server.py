"""HTTP front end: the bearer-token check, rate limits (``ratelimit-*`` headers on every answer,
429 with ``retry-after``), injected faults, the call log, the JSON envelope, and the unsigned
``/_emulator/*`` control API."""
from __future__ import annotations

import json
import time
import traceback
import uuid
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from . import api
from .state import Dropped, HandlerBase, ServerBase, Store

MUTATING = {"POST", "PUT", "DELETE"}


class EmulatorServer(ServerBase):
    def __init__(self, address: tuple[str, int], store: Store) -> None:
        super().__init__(address, Handler, store)


class Handler(HandlerBase):
    server: EmulatorServer

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        if body:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch("PUT")

    def _dispatch(self, method: str) -> None:
        parts = urlsplit(self.path)
        body = self._body()
        if parts.path.startswith("/_emulator/"):
            self._control(method, parts.path[len("/_emulator/"):], parts.query, body)
            return
        try:
            self._api(method, parts.path.rstrip("/") or "/", parts.query, body)
        except Dropped:
            self._drop()

    # -- the API ---------------------------------------------------------------------------------
    def _api(self, method: str, path: str, query: str, body: bytes) -> None:
        store = self.server.store
        request_id = str(uuid.uuid4())
        headers = {"x-request-id": request_id}
        entry: dict[str, Any] = {"time": time.time(), "method": method, "path": path,
                                 "query": query, "status": 0, "error": None, "fault": None,
                                 "request_id": request_id}
        latency = float(store.config.get("latency_ms") or 0) / 1000.0
        if latency > 0:
            time.sleep(latency)
        try:
            auth = self.headers.get("Authorization", "")
            token = auth[len("Bearer "):] if auth.startswith("Bearer ") else ""
            if token not in store.config["tokens"]:
                raise api.ApiError(401, "unauthorized", "Unable to authenticate you.")
            rate, retry = store.rate_check(token, method == "GET" and path == "/v2/account/keys",
                                           time.time())
            headers.update(rate)
            if retry is not None:
                if retry:
                    headers["retry-after"] = str(retry)
                raise api.ApiError(429, "too_many_requests", "API Rate limit exceeded.")
            drop_after = self._fault(store.take_fault(method, path), entry, headers)
            found = api.route(method, path)
            if found is None:
                raise api.ApiError(404, "not_found",
                                   "The resource you were accessing could not be found.")
            try:
                payload = json.loads(body) if body.strip() else None
            except ValueError:
                raise api.ApiError(400, "bad_request", "error parsing request body") from None
            ctx = api.Ctx(store, time.time(), path, dict(parse_qsl(query)), payload)
            handler, args = found
            with store.lock:
                status, result = handler(ctx, *args)
                if method in MUTATING:
                    store.save()
            if drop_after:
                raise Dropped()
            entry["status"] = status
            store.log_call(entry)
            self._send(status, json.dumps(result).encode() if result is not None else b"",
                       headers)
        except api.ApiError as err:
            entry["status"], entry["error"] = err.status, err.error_id
            store.log_call(entry)
            error = {"id": err.error_id, "message": err.message, "request_id": request_id}
            if err.extra and "root_causes" in err.extra:
                error = err.extra   # POST /v2/tags' own 400 shape (facts 1.3)
            elif err.extra:
                error.update(err.extra)
            self._send(err.status, json.dumps(error).encode(), headers)
        except Dropped:
            entry["status"], entry["error"] = 0, "dropped"
            store.log_call(entry)
            raise
        except Exception:  # an emulator bug: answer 500 rather than look like a dropped line
            traceback.print_exc()
            entry["status"], entry["error"] = 500, "emulator_bug"
            store.log_call(entry)
            self._send(500, json.dumps({"id": "server_error",
                                        "message": "emulator bug (see its stderr)"}).encode(),
                       headers)

    def _fault(self, fault: dict | None, entry: dict, headers: dict) -> bool:
        """Applies an injected fault; returns whether to drop the answer after acting."""
        if fault is None:
            return False
        kind = str(fault.get("kind"))
        entry["fault"] = kind
        if fault.get("latency_ms"):
            time.sleep(float(fault["latency_ms"]) / 1000.0)
        if kind == "latency":
            return False
        if kind == "drop_before":
            raise Dropped()
        if kind == "drop_after":
            return True
        if kind == "429":
            if fault.get("retry_after") is not None:
                headers["retry-after"] = str(fault["retry_after"])
            raise api.ApiError(429, "too_many_requests", "API Rate limit exceeded.")
        if kind == "capacity":
            raise api.unprocessable(fault.get("message") or "The size you selected is temporarily "
                                    "unavailable because of insufficient server capacity.")
        status = int(fault.get("status") or kind) if str(kind).isdigit() else 500
        raise api.ApiError(status, "server_error", fault.get("message")
                           or "Unexpected server-side error")

    # -- control API -----------------------------------------------------------------------------
    def _state_view(self, snapshot: dict) -> None:
        for droplet in snapshot["droplets"].values():  # off is billed; only destroy stops it
            end = droplet["deleted_at"] or snapshot["now"]
            droplet["billed_s"] = round(end - droplet["created_ts"], 3)

    def _poweroff(self, did: str) -> None:
        """The guest powered itself off: the droplet goes off (and stays billed)."""
        store = self.server.store
        with store.lock:
            droplet = store.data["droplets"].get(did)
            if droplet is None or droplet.get("deleted_at"):
                self._json(404, {"error": f"unknown droplet {did}"})
                return
            now = time.time()
            droplet["power"], droplet["power_since"] = "off", now
            droplet["status_next"] = ["off", now + float(store.config["delays"]["status_lag"])]
            store.save()
        self._json(200, {"ok": True})

    def _json(self, status: int, value: Any) -> None:
        self._send(status, json.dumps(value, indent=1).encode(), {})
