"""What the project's cloud emulators share (this EC2 one and tools/do_emulator): persistence of
the state dict, the ticker thread, ending the simulated hosts, the common control endpoints, and
the command-line entry point."""
from __future__ import annotations

import argparse
import copy
import getpass
import hashlib
import ipaddress
import json
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

from . import hostsim


# Stubs for the guest's power commands (see guest_bin/guest-power), first on sessions' PATH.
GUEST_BIN = Path(__file__).resolve().parent.parent / "guest_bin"
DEFAULT_GUEST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def host_config_defaults() -> dict[str, Any]:
    """The config keys of the simulated hosts, the same in every emulator: the sshd's port, the
    pool of loopback addresses, the local login user, the sessions' extra environment, the guest
    power stubs, extra sshd_config lines, and whether hosts run an sshd at all."""
    return {
        "ssh_port": 22,
        "ip_pool": {"first": "127.0.1.1", "last": "127.0.254.254"},
        "login_user": getpass.getuser(),
        "instance_env": {},
        "guest_power_stubs": True,
        "sshd_extra_config": [],
        "run_sshd": True,
    }


def deep_merge(base: dict, update: dict) -> dict:
    """Merge ``update`` into ``base`` in place (dicts recursively; ``None`` deletes a key only
    inside dict-valued maps such as ``capacity``)."""
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            deep_merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


class HostStore:
    """Base of an emulator's Store: ``data`` (JSON-able, saved to ``state_dir/state.json``),
    ``lock``, ``procs`` (host key -> sshd Popen), ``mark`` (the sessions' EC2EMU_MARK prefix),
    ``faults``, ``calls``. Subclasses define ``reconcile(now)``, ``reset()`` and
    ``_host_stopped(key)`` and list their hosts in ``_host_pids()``."""

    state_dir: Path
    data: dict
    lock: threading.RLock
    procs: dict[str, subprocess.Popen]
    mark: str
    faults: list[dict]
    calls: list[dict]
    _stop: threading.Event
    _ticker: threading.Thread | None

    def _init_common(self, state_dir: Path, overrides: dict | None) -> None:
        """The shared fields, then the state: ``state.json`` (with \a overrides merged into its
        config) or ``_fresh()``; stale sshds of a previous run are ended, and it is saved."""
        self.state_dir = state_dir.resolve()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.lock = threading.RLock()
        self.control_url = ""
        self.faults = []
        self.calls = []
        self.procs = {}
        self.sshd_failures: dict[str, float] = {}
        self._stop = threading.Event()
        self._ticker = None
        self._initial_overrides = copy.deepcopy(overrides or {})
        self.mark = hashlib.sha256(str(self.state_dir).encode()).hexdigest()[:12]
        path = self.state_dir / "state.json"
        if path.exists():
            self.data = json.loads(path.read_text())
            deep_merge(self.data["config"], self._initial_overrides)
        else:
            self.data = self._fresh()
        self._kill_stale_sshds()
        self.save()

    def _fresh(self) -> dict:
        raise NotImplementedError

    def _kill_stale_sshds(self) -> None:
        raise NotImplementedError

    @property
    def config(self) -> dict:
        return self.data["config"]

    def save(self) -> None:
        with self.lock:
            text = json.dumps(self.data, indent=1, sort_keys=True)
        path = self.state_dir / "state.json"
        tmp = path.with_name(f"state.json.{threading.get_ident()}.tmp")
        with open(tmp, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    def log_call(self, entry: dict) -> None:
        with self.lock:
            entry["seq"] = len(self.calls)
            self.calls.append(entry)
            if len(self.calls) > 20000:
                del self.calls[:5000]

    def advance(self, now: float) -> bool:
        """Moves the state on to \a now (pending to running, actions completing, ...); True when
        anything changed."""
        raise NotImplementedError

    def _sshd_plan(self, now: float) -> dict[str, tuple[bool, bool, dict]]:
        """Per host key: (it should have an sshd now, the sshd it has is of its current boot and
        address, the host's state dict)."""
        raise NotImplementedError

    def reconcile(self, now: float) -> None:
        """Advances the state to \a now, then makes every host's sshd match it: ended where the
        host should have none (or has one of an earlier boot or address), started where it
        should have one (an sshd that exited on its own is tried again after a second)."""
        to_start: list[tuple[str, dict]] = []
        to_stop: list[tuple[str, int | None]] = []
        with self.lock:
            changed = self.advance(now)
            plan = self._sshd_plan(now)
            for key, (want, current, host) in plan.items():
                proc = self.procs.get(key)
                running = proc is not None and proc.poll() is None
                if running and (not want or not current):
                    to_stop.append((key, proc.pid))
                elif not running and want:
                    if proc is not None:
                        self.procs.pop(key, None)
                        self.sshd_failures[key] = now
                    if now - self.sshd_failures.get(key, 0.0) >= 1.0:
                        to_start.append((key, copy.deepcopy(host)))
            for key, proc in list(self.procs.items()):
                if key not in plan and proc.poll() is None:
                    to_stop.append((key, proc.pid))
            if changed:
                self.save()
        for key, pid in to_stop:
            self.stop_host(key, pid)
        for key, host in to_start:
            self._start_host(key, host)

    def _start_host(self, key: str, host: dict) -> None:
        raise NotImplementedError

    def _host_stopped(self, key: str) -> None:
        raise NotImplementedError

    def _host_pids(self) -> list[tuple[str, int | None]]:
        """(key, recorded sshd pid) of every host the state knows."""
        raise NotImplementedError

    def stop_host(self, key: str, pid: int | None) -> None:
        """Ends the host's sshd, its sessions and whatever they started (by pid and marker)."""
        hostsim.kill_pids(hostsim.host_processes(pid, f"{self.mark}/{key}"))
        with self.lock:
            proc = self.procs.pop(key, None)
            if proc is not None:
                try:
                    proc.wait(timeout=0.1)
                except subprocess.TimeoutExpired:
                    pass
            self._host_stopped(key)

    def boot_host(self, key: str, inst_dir: Path, user_data: bytes, login_keys: list[str],
                  address: str, extra_env: dict[str, str], boot: str) -> subprocess.Popen | None:
        """Boots host \a key as cloud-init would (host keys from \a user_data on the first boot
        only, \a login_keys plus its ssh_authorized_keys) and starts its sshd on \a address;
        \a boot names the boot (a new one gets a new boot id). None (remembered in
        sshd_failures, retried later) when that fails."""
        try:
            cloud = hostsim.parse_cloud_config(user_data)
            env = {"EC2EMU_MARK": f"{self.mark}/{key}", "EC2EMU_INSTANCE_ID": key,
                   "EC2EMU_CONTROL_URL": self.control_url, **extra_env,
                   **{str(k): str(v) for k, v in self.config["instance_env"].items()}}
            root = hostsim.prepare_root(inst_dir, env.get("GM_SYSROOT"), boot)
            env["GM_SYSROOT"] = str(root)
            keys = hostsim.write_host_files(inst_dir, root, cloud,
                                            login_keys + cloud.authorized_keys)
            if self.config.get("guest_power_stubs", True):
                # The guest's poweroff/halt/shutdown/systemctl poweroff must reach the emulator,
                # never the test machine these sessions really run on.
                env["PATH"] = f"{GUEST_BIN}:{env.get('PATH', DEFAULT_GUEST_PATH)}"
            config_path = hostsim.write_sshd_config(
                inst_dir, root, address, int(self.config["ssh_port"]), keys, env,
                list(self.config["sshd_extra_config"]))
            return hostsim.start_sshd(config_path, inst_dir / "sshd.log")
        except (OSError, subprocess.SubprocessError, ValueError) as exc:
            with self.lock:
                self.sshd_failures[key] = time.time()
            print(f"emulator: cannot start sshd for {key}: {exc}", flush=True)
            return None

    def start_ticker(self, interval: float = 0.05) -> None:
        def loop() -> None:
            while not self._stop.wait(interval):
                try:
                    self.reconcile(time.time())
                except Exception as exc:  # keep ticking; report the problem
                    print(f"emulator: ticker error: {exc!r}", flush=True)
        self._ticker = threading.Thread(target=loop, name="ticker", daemon=True)
        self._ticker.start()

    def kill_all_hosts(self) -> None:
        with self.lock:
            targets = [(key, p.pid) for key, p in self.procs.items()]
            targets += [(key, pid) for key, pid in self._host_pids() if key not in self.procs]
        for key, pid in targets:
            self.stop_host(key, pid)

    def shutdown(self) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=5)
        self.kill_all_hosts()
        self.save()


class Dropped(Exception):
    """Close the connection without an answer."""


class ServerBase(ThreadingHTTPServer):
    """An emulator's HTTP server: its Store in ``store``; request_stop() ends serve_forever()."""
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: type, store: Any) -> None:
        super().__init__(address, handler)
        self.store = store
        self.stopping = threading.Event()

    def request_stop(self) -> None:
        if not self.stopping.is_set():
            self.stopping.set()
            threading.Thread(target=self.shutdown, daemon=True).start()


class HandlerBase(BaseHTTPRequestHandler):
    """Quiet HTTP/1.1 plumbing; subclasses implement ``_dispatch(method)``."""
    protocol_version = "HTTP/1.1"
    # Answers go out in several small writes (status, headers, body); with Nagle's algorithm on, a
    # reused connection waits ~40 ms for the client's delayed ACK on every request.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  (quiet by default)
        pass

    def _dispatch(self, method: str) -> None:
        raise NotImplementedError

    def _json(self, status: int, value: Any) -> None:
        raise NotImplementedError

    def _control(self, method: str, name: str, query: str, body: bytes) -> None:
        """The control API (``/_emulator/NAME``): the endpoints of control_common, ``state`` (a
        snapshot of the store with ``now`` and ``faults``, and what _state_view adds) and the
        guest's ``poweroff?instance=ID``."""
        store = self.server.store  # type: ignore[attr-defined]
        request = control_request(self, query, body)
        if request is None:
            return
        args, payload = request
        if control_common(self, store, method, name, args, payload):
            return
        if name == "state":
            with store.lock:
                snapshot = json.loads(json.dumps(store.data))
            snapshot["now"] = time.time()
            snapshot["faults"] = list(store.faults)
            self._state_view(snapshot)
            self._json(200, snapshot)
        elif name == "poweroff" and method == "POST":
            self._poweroff(args.get("instance") or (payload or {}).get("instance", ""))
        else:
            self._json(404, {"error": f"unknown control endpoint {method} /_emulator/{name}"})

    def _state_view(self, snapshot: dict) -> None:
        """Adds derived facts to a ``state`` snapshot (none by default)."""

    def _poweroff(self, key: str) -> None:
        """The guest powered itself off (its power stub called the control API)."""
        raise NotImplementedError

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            for _ in range(100000):
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _drop(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def do_GET(self) -> None:  # noqa: N802
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch("DELETE")


def control_request(handler: Any, query: str, body: bytes) -> tuple[dict, Any] | None:
    """The query arguments and JSON payload of a control call; None (after answering 400) when
    the body is not JSON."""
    args = {k: v[-1] for k, v in parse_qs(query).items()}
    try:
        return args, (json.loads(body) if body.strip() else None)
    except ValueError:
        handler._json(400, {"error": "body is not JSON"})
        return None


def control_common(handler: Any, store: HostStore, method: str, name: str, args: dict,
                   payload: Any) -> bool:
    """The control endpoints every emulator has (health, calls, config, faults, reset,
    shutdown); returns False for any other name. ``handler`` answers with ``_json``."""
    if name == "health":
        handler._json(200, {"ok": True})
    elif name == "calls":
        since = int(args.get("since", 0))
        with store.lock:
            calls = [c for c in store.calls if c["seq"] >= since]
        handler._json(200, {"calls": calls})
    elif name == "config":
        if method == "POST":
            if not isinstance(payload, dict):
                handler._json(400, {"error": "config must be a JSON object"})
                return True
            with store.lock:
                deep_merge(store.config, payload)
            store.save()
        handler._json(200, store.config)
    elif name == "faults":
        with store.lock:
            if method == "DELETE":
                store.faults.clear()
            elif method == "POST":
                items = payload if isinstance(payload, list) else [payload]
                if not all(isinstance(f, dict) and f.get("kind") for f in items):
                    handler._json(400, {"error": "each fault needs a 'kind'"})
                    return True
                store.faults.extend(dict(f, count=int(f.get("count", 1))) for f in items)
            faults = list(store.faults)
        handler._json(200, {"faults": faults})
    elif name == "reset" and method == "POST":
        store.reset()  # type: ignore[attr-defined]
        handler._json(200, {"ok": True})
    elif name == "shutdown" and method == "POST":
        handler._json(200, {"ok": True})
        handler.close_connection = True
        handler.server.request_stop()
    else:
        return False
    return True


def run_main(argv: list[str], description: str, make_store: Callable[[Path, dict], Any],
             make_server: Callable[[tuple[str, int], Any], Any]) -> int:
    """``--state-dir DIR [--port P] [--host 127.x] [--config FILE]``; prints "READY <port>"
    once listening, serves until SIGTERM/SIGINT or /_emulator/shutdown, then ends every host."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--state-dir", required=True, type=Path,
                        help="directory for state.json and per-host sshd files")
    parser.add_argument("--port", type=int, default=0, help="TCP port (0 picks a free one)")
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind")
    parser.add_argument("--config", type=Path, help="JSON file merged over the defaults")
    args = parser.parse_args(argv)
    if not ipaddress.IPv4Address(args.host).is_loopback:
        parser.error("--host must be inside 127.0.0.0/8 (loopback only)")
    overrides = json.loads(args.config.read_text()) if args.config else {}
    store = make_store(args.state_dir, overrides)
    server = make_server((args.host, args.port), store)
    port = server.server_address[1]
    store.control_url = f"http://{args.host}:{port}"
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: server.request_stop())
    store.start_ticker()
    print(f"READY {port}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        store.shutdown()
        server.server_close()
    return 0
