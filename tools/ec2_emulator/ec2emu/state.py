"""Emulator state: configuration, per-region resources, the wall-clock state machine, the
public-IP pool, sshd processes, faults, the call log and persistence.

All resources are plain JSON-able dicts so the whole state can be written atomically to
``<state-dir>/state.json`` after each mutation and read back after a restart. One re-entrant
lock (``Store.lock``) guards everything; the ticker thread advances instance states and
starts/stops sshds outside the lock.
"""
from __future__ import annotations

import base64
import copy
import errno
import hashlib
import ipaddress
import secrets
import shutil
import socket
import time
from pathlib import Path
from typing import Any

from . import catalogue, hostsim
from .common import HostStore, deep_merge, host_config_defaults

from .sigv4 import Credential

DEFAULT_ACCESS_KEY = "AKIDEXAMPLE"
DEFAULT_SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"

STATE_CODES = {"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48,
               "stopping": 64, "stopped": 80}


def default_config() -> dict[str, Any]:
    return {
        "delays": {"pending": 2.0, "stopping": 2.0, "stopping_force": 0.5,
                   "shutting_down": 2.0, "reboot": 1.0},
        "ssh_delay": 0.0,
        "terminated_visible_s": 120.0,
        "consistency_delay": 0.0,
        "latency_ms": 0,
        "capacity": {},
        "unsupported": copy.deepcopy(catalogue.DEFAULT_UNSUPPORTED),
        "regions": copy.deepcopy(catalogue.DEFAULT_REGIONS),
        "credentials": [{"access_key_id": DEFAULT_ACCESS_KEY,
                         "secret_access_key": DEFAULT_SECRET_KEY}],
        "account_id": "123456789012",
        "max_clock_skew_s": 300,
        **host_config_defaults(),
        "instance_limit": 64,
        "vcpu_quota": {"G": None, "P": None, "Standard": None},
        "spot_prices": {},
    }


def new_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(9)[:17]}"


def _stable_id(prefix: str, seed: str) -> str:
    return f"{prefix}-{hashlib.sha256(seed.encode()).hexdigest()[:17]}"


def iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts * 1000) % 1000:03d}Z"


class Store(HostStore):
    def __init__(self, state_dir: Path, config_overrides: dict | None = None,
                 control_url: str = "") -> None:
        self._init_common(state_dir, config_overrides)
        self.control_url = control_url
        (self.state_dir / "instances").mkdir(exist_ok=True)

    def _fresh(self) -> dict:
        config = deep_merge(default_config(), self._initial_overrides)
        return {"version": 1, "ip_counter": 0, "regions": {}, "sts_credentials": [],
                "config": config}

    # -- credentials --------------------------------------------------------
    def lookup_credential(self, access_key: str) -> Credential | None:
        with self.lock:
            account = self.config["account_id"]
            for entry in self.config["credentials"] + self.data["sts_credentials"]:
                if entry["access_key_id"] == access_key:
                    return Credential(
                        access_key_id=entry["access_key_id"],
                        secret_access_key=entry["secret_access_key"],
                        session_token=entry.get("session_token"),
                        expires=entry.get("expires"),
                        arn=entry.get("arn", f"arn:aws:iam::{account}:user/emulator"),
                        account=entry.get("account", account),
                        user_id=entry.get("user_id", "AIDAEMULATOREXAMPLE"))
        return None

    def valid_regions(self) -> set[str]:
        return set(self.config["regions"])

    # -- regions --------------------------------------------------------------
    def region(self, name: str) -> dict:
        """Per-region resources, created on first use with a default VPC, subnets and SG."""
        regions = self.data["regions"]
        if name not in regions:
            regions[name] = self._new_region(name)
        return regions[name]

    def zones(self, region: str) -> list[str]:
        return [f"{region}{z}" for z in self.config["regions"].get(region, [])]

    def _new_region(self, name: str) -> dict:
        vpc_id = _stable_id("vpc", f"vpc/{name}")
        subnets = {}
        for i, zone in enumerate(self.zones(name)):
            sid = _stable_id("subnet", f"subnet/{name}/{zone}")
            subnets[sid] = {"subnetId": sid, "vpcId": vpc_id, "availabilityZone": zone,
                            "cidrBlock": f"172.31.{16 * i}.0/20", "defaultForAz": True,
                            "mapPublicIpOnLaunch": True, "tags": {}, "next_host": 4}
        sg_id = _stable_id("sg", f"sg/{name}/default")
        default_sg = {"groupId": sg_id, "groupName": "default", "vpcId": vpc_id,
                      "description": "default VPC security group", "tags": {},
                      "ingress": [], "created_at": 0.0, "default": True}
        return {"vpcs": {vpc_id: {"vpcId": vpc_id, "cidrBlock": "172.31.0.0/16",
                                  "isDefault": True, "tags": {}}},
                "subnets": subnets, "security_groups": {sg_id: default_sg},
                "instances": {}, "reservations": {}, "key_pairs": {}, "volumes": {},
                "enis": {}, "client_tokens": {}, "placement_groups": {}}

    def all_instances(self):
        for region_name, region in self.data["regions"].items():
            for inst in region["instances"].values():
                yield region_name, inst

    # -- public IP pool ---------------------------------------------------------
    def allocate_public_ip(self) -> str:
        pool = self.config["ip_pool"]
        first = int(ipaddress.IPv4Address(pool["first"]))
        last = int(ipaddress.IPv4Address(pool["last"]))
        size = last - first + 1
        in_use = {inst.get("publicIp") for _, inst in self.all_instances()}
        port = int(self.config["ssh_port"])
        for _ in range(size):
            offset = self.data["ip_counter"] % size
            self.data["ip_counter"] += 1
            address = str(ipaddress.IPv4Address(first + offset))
            if address.endswith((".0", ".255")) or address in in_use:
                continue
            if _bindable(address, port):
                return address
        raise RuntimeError("public IP pool exhausted")

    # -- faults and call log ------------------------------------------------------
    def take_fault(self, service: str, action: str, region: str) -> dict | None:
        with self.lock:
            for fault in self.faults:
                if fault.get("action", "*") not in ("*", action):
                    continue
                if fault.get("service", "*") not in ("*", service):
                    continue
                if fault.get("region", "*") not in ("*", region):
                    continue
                fault["count"] = int(fault.get("count", 1)) - 1
                if fault["count"] <= 0:
                    self.faults.remove(fault)
                return dict(fault)
        return None

    # -- state machine -----------------------------------------------------------
    def set_state(self, inst: dict, state: str, now: float,
                  reason: tuple[str, str] | None = None) -> None:
        inst["state"] = state
        inst["state_since"] = now
        if reason is not None:
            inst["stateReason"] = {"code": reason[0], "message": reason[1]}
        if state in ("stopping", "shutting-down"):
            inst["publicIp"] = None
            inst["running_since"] = None

    def advance(self, now: float) -> bool:
        """Apply every due transition; returns whether anything changed."""
        changed = False
        delays = self.config["delays"]
        for region_name, region in list(self.data["regions"].items()):
            for iid, inst in list(region["instances"].items()):
                elapsed = now - inst["state_since"]
                state = inst["state"]
                if state == "pending" and elapsed >= float(delays["pending"]):
                    inst["publicIp"] = self.allocate_public_ip()
                    inst["running_since"] = inst["state_since"] + float(delays["pending"])
                    inst["metadataOptions"]["state"] = "applied"
                    inst["stateReason"] = None
                    self.set_state(inst, "running", now)
                    changed = True
                elif state == "stopping":
                    key = "stopping_force" if inst.get("force_stop") else "stopping"
                    if elapsed >= float(delays[key]):
                        self.set_state(inst, "stopped", now)
                        changed = True
                elif state == "shutting-down" and elapsed >= float(delays["shutting_down"]):
                    self.set_state(inst, "terminated", now)
                    self._release_volumes(region, inst)
                    changed = True
                elif state == "terminated" and elapsed >= float(self.config["terminated_visible_s"]):
                    self._forget_instance(region, iid)
                    changed = True
        return changed

    def _release_volumes(self, region: dict, inst: dict) -> None:
        for bd in inst["blockDevices"]:
            vol = region["volumes"].get(bd["volumeId"])
            if vol is None:
                continue
            if bd["deleteOnTermination"]:
                del region["volumes"][bd["volumeId"]]
            else:
                vol["attachment"] = None
                vol["state"] = "available"
        eni = inst.get("networkInterfaceId")
        if eni:
            region["enis"].pop(eni, None)

    def _forget_instance(self, region: dict, iid: str) -> None:
        inst = region["instances"].pop(iid)
        res = region["reservations"].get(inst["reservationId"])
        if res is not None:
            res["instanceIds"] = [i for i in res["instanceIds"] if i != iid]
        shutil.rmtree(self.instance_dir(iid), ignore_errors=True)

    def instance_dir(self, iid: str) -> Path:
        return self.state_dir / "instances" / iid

    # -- sshd reconciliation ---------------------------------------------------------
    def _wants_sshd(self, inst: dict, now: float) -> bool:
        if not self.config.get("run_sshd", True) or inst["state"] != "running":
            return False
        if float(inst.get("reboot_from") or 0) <= now < float(inst.get("reboot_until") or 0):
            return False
        return now >= float(inst["running_since"] or now) + float(self.config["ssh_delay"])

    def _sshd_plan(self, now: float) -> dict[str, tuple[bool, bool, dict]]:
        plan = {}
        for _, inst in self.all_instances():
            bound = inst.get("sshd_address") == inst.get("publicIp")
            stale = (int(inst.get("sshd_boot") or 0) != int(inst.get("boot") or 0)
                     and now >= float(inst.get("reboot_from") or 0))
            plan[inst["id"]] = (self._wants_sshd(inst, now), bound and not stale, inst)
        return plan

    def _host_stopped(self, iid: str) -> None:
        for _, inst in self.all_instances():
            if inst["id"] == iid:
                inst["sshd_pid"] = None
                inst["sshd_address"] = None

    def _host_pids(self) -> list[tuple[str, int | None]]:
        return [(inst["id"], inst.get("sshd_pid")) for _, inst in self.all_instances()]

    def _start_host(self, iid: str, inst: dict) -> None:
        # A start gives a new running_since, a reboot a new boot number.
        boot = f"{inst.get('running_since')}/{inst.get('boot') or 0}"
        proc = self.boot_host(iid, self.instance_dir(iid),
                              base64.b64decode(inst.get("userData") or ""),
                              list(inst.get("authorizedKeys") or []), inst["publicIp"], {}, boot)
        if proc is None:
            return
        with self.lock:
            self.procs[iid] = proc
            for _, live in self.all_instances():
                if live["id"] == iid:
                    live["sshd_pid"] = proc.pid
                    live["sshd_address"] = inst["publicIp"]
                    live["sshd_boot"] = inst.get("boot") or 0
            self.save()

    def _kill_stale_sshds(self) -> None:
        """After a crash, sshds from the previous run may still be alive: end them by pid."""
        for _, inst in self.all_instances():
            pid = inst.get("sshd_pid")
            config_path = self.instance_dir(inst["id"]) / "sshd_config"
            if pid and hostsim.sshd_cmdline_matches(pid, config_path):
                hostsim.kill_pids(hostsim.host_processes(pid, f"{self.mark}/{inst['id']}"))
            inst["sshd_pid"] = None
            inst["sshd_address"] = None

    # -- lifecycle --------------------------------------------------------------------
    def reset(self) -> None:
        self.kill_all_hosts()
        with self.lock:
            for _, inst in list(self.all_instances()):
                shutil.rmtree(self.instance_dir(inst["id"]), ignore_errors=True)
            self.data = self._fresh()
            self.faults.clear()
            self.calls.clear()
            self.sshd_failures.clear()
            self.save()


def _bindable(address: str, port: int) -> bool:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address, port))
        return True
    except OSError as exc:
        return exc.errno != errno.EADDRINUSE
    finally:
        sock.close()
