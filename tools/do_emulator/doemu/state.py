"""Emulator state: configuration, droplets, actions, SSH keys, firewalls and tags, the wall-clock
state machine, the public-IP pool, one sshd per powered-on droplet, rate limits, faults, the call
log and persistence.

Everything is a plain JSON-able dict, written atomically to ``<state-dir>/state.json`` after each
mutation. One re-entrant lock (``Store.lock``) guards it; the ticker thread advances states and
starts/stops sshds (the host side is the EC2 emulator's ``hostsim``, shared).
"""
from __future__ import annotations

import hashlib
import ipaddress
import shutil
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any

EC2_EMULATOR = Path(__file__).resolve().parents[2] / "ec2_emulator"
sys.path.insert(0, str(EC2_EMULATOR))
from ec2emu import hostsim  # noqa: E402  (the simulated host: cloud-init keys and a real sshd)
from ec2emu.common import (Dropped, HandlerBase, HostStore, ServerBase,  # noqa: E402,F401
                           deep_merge, host_config_defaults, run_main)
from ec2emu.state import _bindable  # noqa: E402

DEFAULT_TOKEN = "dop_v1_" + "0123456789abcdef" * 4
FIRST_ACTION_ID = 3169590176  # beyond 2**31, as the real API's are (facts 1.8)


def default_config() -> dict[str, Any]:
    return {
        "tokens": [DEFAULT_TOKEN],
        "delays": {"create": 2.0, "action": 1.0, "status_lag": 0.3, "delete_linger": 1.0,
                   "firewall": 0.5},
        "ssh_delay": 0.0,
        "latency_ms": 0,
        "rate_limit": {"per_hour": 5000, "per_minute": 250, "keys_list_per_minute": 10},
        "droplet_limit": 25,
        "capacity": {},            # {"tor1": {"gpu-h100x1-80gb": "message"}}, "*" for any
        "tag_list_includes_gpus": False,  # undocumented (facts 3.4): off is the worst case
        **host_config_defaults(),
        "public_base": "https://api.digitalocean.com",
    }


def iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def md5_fingerprint(blob: bytes) -> str:
    digest = hashlib.md5(blob).hexdigest()  # noqa: S324  (DO's key fingerprint format)
    return ":".join(digest[i:i + 2] for i in range(0, 32, 2))


class Store(HostStore):
    def __init__(self, state_dir: Path, config_overrides: dict | None = None) -> None:
        (state_dir / "droplets").mkdir(parents=True, exist_ok=True)
        self.requests: dict[str, deque] = {}      # token -> request times (rolling hour)
        self.key_lists: dict[str, deque] = {}     # token -> GET /v2/account/keys times
        self._init_common(state_dir, config_overrides)

    def _fresh(self) -> dict:
        return {"version": 1, "ip_counter": 0, "next_id": {"droplet": 512000001,
                "action": FIRST_ACTION_ID, "key": 41000001}, "droplets": {}, "actions": {},
                "keys": {}, "firewalls": {}, "tags": {},
                "config": deep_merge(default_config(), self._initial_overrides)}

    def new_id(self, kind: str) -> int:
        value = self.data["next_id"][kind]
        self.data["next_id"][kind] = value + 1
        return value

    # -- rate limits (facts 1.4) -------------------------------------------------------------
    def rate_check(self, token: str, keys_list: bool, now: float) -> tuple[dict, int | None]:
        """Counts one request; returns the ratelimit-* headers and, when limited, the
        retry-after seconds (0: the hourly limit, no retry-after)."""
        limits = self.config["rate_limit"]
        with self.lock:
            times = self.requests.setdefault(token, deque())
            while times and times[0] <= now - 3600:
                times.popleft()
            recent = [t for t in times if t > now - 60]
            retry: int | None = None
            if len(times) >= int(limits["per_hour"]):
                retry = 0
            elif len(recent) >= int(limits["per_minute"]):
                retry = max(1, int(recent[0] + 60 - now + 0.999))
            elif keys_list:
                lists = self.key_lists.setdefault(token, deque())
                while lists and lists[0] <= now - 60:
                    lists.popleft()
                if len(lists) >= int(limits["keys_list_per_minute"]):
                    retry = max(1, int(lists[0] + 60 - now + 0.999))
                else:
                    lists.append(now)
            if retry is None:
                times.append(now)
            headers = {"ratelimit-limit": str(limits["per_hour"]),
                       "ratelimit-remaining": str(max(0, int(limits["per_hour"]) - len(times))),
                       "ratelimit-reset": str(int((times[0] if times else now) + 3600))}
        return headers, retry

    # -- faults and call log -------------------------------------------------------------------
    def take_fault(self, method: str, path: str) -> dict | None:
        with self.lock:
            for fault in self.faults:
                if fault.get("method", "*") not in ("*", method):
                    continue
                want = fault.get("path", "*")
                if want != "*" and not (path == want or (want.endswith("*")
                                                         and path.startswith(want[:-1]))):
                    continue
                fault["count"] = int(fault.get("count", 1)) - 1
                if fault["count"] <= 0:
                    self.faults.remove(fault)
                return dict(fault)
        return None

    # -- addresses -----------------------------------------------------------------------------
    def allocate_public_ip(self) -> str:
        pool = self.config["ip_pool"]
        first = int(ipaddress.IPv4Address(pool["first"]))
        size = int(ipaddress.IPv4Address(pool["last"])) - first + 1
        in_use = {d.get("public_ip") for d in self.data["droplets"].values()}
        for _ in range(size):
            offset = self.data["ip_counter"] % size
            self.data["ip_counter"] += 1
            address = str(ipaddress.IPv4Address(first + offset))
            if address.endswith((".0", ".255")) or address in in_use:
                continue
            if _bindable(address, int(self.config["ssh_port"])):
                return address
        raise RuntimeError("public IP pool exhausted")

    # -- the state machine ---------------------------------------------------------------------
    def advance(self, now: float) -> bool:
        changed = False
        delays = self.config["delays"]
        for action in self.data["actions"].values():
            if action["status"] != "in-progress" or now < action["completes_at"]:
                continue
            action["status"] = "completed"
            action["completed_at"] = iso(now)
            changed = True
            droplet = self.data["droplets"].get(str(action["resource_id"]))
            if droplet is None or droplet.get("deleted_at"):
                continue
            power = action.get("power")
            if power:
                droplet["power"] = power
                droplet["power_since"] = now
                if action["type"] in ("reboot", "power_cycle"):
                    droplet["boot"] = int(droplet.get("boot") or 0) + 1  # a new boot, new sshd
                # The status trails the completed action (facts 2.5, "status lag").
                droplet["status_next"] = ["active" if power == "on" else "off",
                                          now + float(delays["status_lag"])]
        for did, droplet in list(self.data["droplets"].items()):
            nxt = droplet.get("status_next")
            if nxt and now >= nxt[1] and not droplet.get("deleted_at"):
                droplet["status"] = nxt[0]
                droplet["status_next"] = None
                if nxt[0] == "active" and not droplet.get("public_ip"):
                    droplet["public_ip"] = self.allocate_public_ip()  # only once active
                changed = True
            if droplet.get("deleted_at") and now >= droplet["deleted_at"] + float(
                    delays["delete_linger"]):
                del self.data["droplets"][did]
                shutil.rmtree(self.droplet_dir(did), ignore_errors=True)
                changed = True
        for fw in self.data["firewalls"].values():
            if fw["status"] == "waiting" and now >= fw["ready_at"]:
                fw["status"] = "succeeded"
                fw["pending_changes"] = []
                changed = True
        return changed

    def droplet_dir(self, did: str) -> Path:
        return self.state_dir / "droplets" / did

    def _wants_sshd(self, droplet: dict, now: float) -> bool:
        return bool(self.config.get("run_sshd", True) and droplet.get("power") == "on"
                    and droplet.get("public_ip") and not droplet.get("deleted_at")
                    and now >= float(droplet.get("power_since") or now)
                    + float(self.config["ssh_delay"]))

    def _sshd_plan(self, now: float) -> dict[str, tuple[bool, bool, dict]]:
        return {did: (self._wants_sshd(d, now), d.get("sshd_boot") == (d.get("boot") or 0), d)
                for did, d in self.data["droplets"].items()}

    def _host_stopped(self, did: str) -> None:
        if did in self.data["droplets"]:
            self.data["droplets"][did]["sshd_pid"] = None

    def _host_pids(self) -> list[tuple[str, int | None]]:
        return [(did, d.get("sshd_pid")) for did, d in self.data["droplets"].items()]

    def _start_host(self, did: str, droplet: dict) -> None:
        """The droplet's login keys are the registered keys its create named."""
        with self.lock:
            login = [self.data["keys"][str(k)]["public_key"]
                     for k in droplet.get("ssh_key_ids", []) if str(k) in self.data["keys"]]
        boot = droplet.get("boot") or 0
        proc = self.boot_host(did, self.droplet_dir(did),
                              (droplet.get("user_data") or "").encode(), login,
                              droplet["public_ip"], {"DOEMU_DROPLET_ID": did},
                              f"{droplet.get('power_since')}/{boot}")
        if proc is None:
            return
        with self.lock:
            self.procs[did] = proc
            if did in self.data["droplets"]:
                self.data["droplets"][did]["sshd_pid"] = proc.pid
                self.data["droplets"][did]["sshd_boot"] = boot
            self.save()

    def _kill_stale_sshds(self) -> None:
        for did, droplet in self.data["droplets"].items():
            pid = droplet.get("sshd_pid")
            if pid and hostsim.sshd_cmdline_matches(pid, self.droplet_dir(did) / "sshd_config"):
                hostsim.kill_pids(hostsim.host_processes(pid, f"{self.mark}/{did}"))
            droplet["sshd_pid"] = None

    # -- lifecycle -----------------------------------------------------------------------------
    def reset(self) -> None:
        self.kill_all_hosts()
        with self.lock:
            for did in list(self.data["droplets"]):
                shutil.rmtree(self.droplet_dir(did), ignore_errors=True)
            self.data = self._fresh()
            self.faults.clear()
            self.calls.clear()
            self.requests.clear()
            self.key_lists.clear()
            self.sshd_failures.clear()
            self.save()
