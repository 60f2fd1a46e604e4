"""Tests for the DigitalOcean emulator (tools/do_emulator), stdlib unittest.

Run: python3 -m unittest discover -s tests/emulator
"""
from __future__ import annotations

import http.client
import json
import os
import random
import shutil
import subprocess
import tempfile
import time
import unittest
from pathlib import Path

from test_emulator import IS_ROOT, ROOT, Emulator, cloud_config, make_keys, pid_alive, wait_for

TOKEN = "dop_v1_" + "0123456789abcdef" * 4
DO_EMULATOR = ROOT / "tools" / "do_emulator" / "do_emulator.py"


class DoEmulator(Emulator):
    script = DO_EMULATOR

    def api(self, method: str, path: str, body=None, token: str | None = TOKEN,
            ) -> tuple[int, dict | None, dict]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        try:
            conn.request(method, path, body=json.dumps(body) if body is not None else None,
                         headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, json.loads(data) if data else None, \
                {k.lower(): v for k, v in resp.getheaders()}
        finally:
            conn.close()


class DoEmulatorTests(unittest.TestCase):
    ssh_port = 22 if IS_ROOT else random.randint(20000, 30000)

    @classmethod
    def setUpClass(cls) -> None:
        cls.tmp = Path(tempfile.mkdtemp(prefix="doemu-test-"))
        cls.keys = make_keys(cls.tmp)
        octet = random.randint(20, 250)
        cls.emu = DoEmulator(cls.tmp / "state", {
            "delays": {"create": 0.3, "action": 0.2, "status_lag": 0.1, "delete_linger": 0.3,
                       "firewall": 0.2},
            "ip_pool": {"first": f"127.{octet}.1.1", "last": f"127.{octet}.200.254"},
            "ssh_port": cls.ssh_port}).start()

    @classmethod
    def tearDownClass(cls) -> None:
        cls.emu.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self) -> None:
        self.emu.control("reset", {})

    # -- helpers --------------------------------------------------------------------------------
    def ok(self, method: str, path: str, body=None, want: int = 200):
        status, data, _ = self.emu.api(method, path, body)
        self.assertEqual(status, want, data)
        return data

    def add_key(self) -> dict:
        return self.ok("POST", "/v2/account/keys", {"name": "gm-k", "public_key":
                                                    self.keys["client_pub"]}, 201)["ssh_key"]

    def create(self, **extra) -> tuple[dict, int]:
        body = {"name": "gm-m1", "size": "s-1vcpu-1gb", "image": "ubuntu-24-04-x64",
                "region": "nyc3", **extra}
        data = self.ok("POST", "/v2/droplets", body, 202)
        return data["droplet"], data["links"]["actions"][0]["id"]

    def droplet(self, did: int) -> dict:
        return self.ok("GET", f"/v2/droplets/{did}")["droplet"]

    def wait_status(self, did: int, status: str) -> dict:
        return wait_for(lambda: (lambda d: d if d["status"] == status else None)(self.droplet(did)))

    def ssh(self, address: str, host_pub: str, command: str = "true"):
        kh = self.tmp / "known_hosts"
        host = address if self.ssh_port == 22 else f"[{address}]:{self.ssh_port}"
        kh.write_text(f"{host} {host_pub}\n")
        return subprocess.run(
            ["ssh", "-i", str(self.tmp / "client"), "-p", str(self.ssh_port),
             "-o", f"UserKnownHostsFile={kh}", "-o", "StrictHostKeyChecking=yes",
             "-o", "BatchMode=yes", "-o", "ConnectTimeout=5", "-F", "/dev/null",
             f"{'root' if IS_ROOT else os.environ.get('USER', 'root')}@{address}", command],
            capture_output=True, text=True, timeout=20)

    # -- tests ----------------------------------------------------------------------------------
    def test_bearer_token_is_checked(self):
        for token in (None, "dop_v1_wrong"):
            status, data, headers = self.emu.api("GET", "/v2/account", token=token)
            self.assertEqual(status, 401)
            self.assertEqual((data["id"], data["message"]),
                             ("unauthorized", "Unable to authenticate you."))
            self.assertIn("x-request-id", headers)
        status, _, headers = self.emu.api("GET", "/v2/account")
        self.assertEqual(status, 200)
        for name in ("ratelimit-limit", "ratelimit-remaining", "ratelimit-reset", "x-request-id"):
            self.assertIn(name, headers)

    def test_sizes_page_with_absolute_links_and_gpu_prices(self):
        first = self.ok("GET", "/v2/sizes")
        self.assertEqual(len(first["sizes"]), 13)   # default per_page 20 holds them all here
        small = self.ok("GET", "/v2/sizes?per_page=5&page=2")
        self.assertEqual(len(small["sizes"]), 5)
        self.assertEqual(small["meta"]["total"], 13)
        pages = small["links"]["pages"]
        self.assertTrue(pages["next"].startswith("https://api.digitalocean.com/v2/sizes?page=3"))
        self.assertIn("prev", pages)
        last = self.ok("GET", "/v2/sizes?per_page=5&page=3")
        self.assertNotIn("next", last["links"]["pages"])
        h100 = next(s for s in first["sizes"] if s["slug"] == "gpu-h100x1-80gb")
        self.assertEqual((h100["price_hourly"], h100["gpu_info"]["count"]), (3.39, 1))

    def test_create_active_ssh_with_pinned_host_key_power_and_delete(self):
        key = self.add_key()
        droplet, action_id = self.create(
            ssh_keys=[key["fingerprint"]], tags=["gpumachine", "gpumachine:id:abc"],
            user_data=cloud_config(self.keys["host_priv"], self.keys["host_pub"]))
        self.assertEqual((droplet["status"], droplet["networks"]["v4"]), ("new", []))
        self.assertGreater(action_id, 2 ** 31)
        action = wait_for(lambda: (lambda a: a if a["status"] == "completed" else None)(
            self.ok("GET", f"/v2/actions/{action_id}")["action"]))
        self.assertEqual(action["type"], "create")
        d = self.wait_status(droplet["id"], "active")
        address = next(n["ip_address"] for n in d["networks"]["v4"] if n["type"] == "public")
        self.assertTrue(address.startswith("127."))
        wait_for(lambda: self.ssh(address, self.keys["host_pub"]).returncode == 0, 10, 0.2)
        wrong = self.ssh(address, self.keys["client_pub"])   # a different host key is refused
        self.assertIn("verification failed", wrong.stderr)
        self.assertIn("gpumachine:id:abc", self.ok("GET", "/v2/tags")["tags"][1]["name"])
        # power_off: 201 in-progress, a second action is a pending event, status flips after
        data = self.ok("POST", f"/v2/droplets/{d['id']}/actions", {"type": "power_off"}, 201)
        self.assertEqual(data["action"]["status"], "in-progress")
        status, err, _ = self.emu.api("POST", f"/v2/droplets/{d['id']}/actions",
                                      {"type": "power_on"})
        self.assertEqual((status, err["message"]), (422, "Droplet already has a pending event."))
        self.wait_status(d["id"], "off")
        pid = self.emu.state()["droplets"][str(d["id"])]["sshd_pid"]
        self.assertIsNone(pid)
        billed = self.emu.state()["droplets"][str(d["id"])]["billed_s"]
        time.sleep(0.2)
        self.assertGreater(self.emu.state()["droplets"][str(d["id"])]["billed_s"], billed)
        self.ok("POST", f"/v2/droplets/{d['id']}/actions", {"type": "power_on"}, 201)
        d2 = self.wait_status(d["id"], "active")
        self.assertEqual(d2["networks"]["v4"][0]["ip_address"], address)  # DO keeps the address
        sshd = wait_for(lambda: self.emu.state()["droplets"][str(d["id"])]["sshd_pid"])
        # delete: 204, lingers, then 404; the host is gone at once
        self.ok("DELETE", f"/v2/droplets/{d['id']}", want=204)
        wait_for(lambda: not pid_alive(sshd), 5)
        wait_for(lambda: self.emu.api("GET", f"/v2/droplets/{d['id']}")[0] == 404, 5)
        self.assertEqual(self.emu.api("DELETE", f"/v2/droplets/{d['id']}")[0], 404)

    def test_reboot_is_a_new_boot_with_a_new_sshd_and_boot_id(self):
        key = self.add_key()
        droplet, _ = self.create(ssh_keys=[key["fingerprint"]],
                                 user_data=cloud_config(self.keys["host_priv"],
                                                        self.keys["host_pub"]))
        d = self.wait_status(droplet["id"], "active")
        address = d["networks"]["v4"][0]["ip_address"]
        wait_for(lambda: self.ssh(address, self.keys["host_pub"]).returncode == 0, 10, 0.2)
        read = 'cat "$GM_SYSROOT/proc/sys/kernel/random/boot_id"'
        before = self.ssh(address, self.keys["host_pub"], read).stdout.strip()
        first = self.emu.state()["droplets"][str(d["id"])]["sshd_pid"]
        for kind in ("reboot", "power_cycle"):
            data = self.ok("POST", f"/v2/droplets/{d['id']}/actions", {"type": kind}, 201)
            wait_for(lambda: self.ok("GET", f"/v2/actions/{data['action']['id']}")["action"]
                     ["status"] == "completed")
            wait_for(lambda: not pid_alive(first), 5)
            first = wait_for(lambda: self.emu.state()["droplets"][str(d["id"])]["sshd_pid"])
            wait_for(lambda: self.ssh(address, self.keys["host_pub"]).returncode == 0, 10, 0.2)
            after = self.ssh(address, self.keys["host_pub"], read).stdout.strip()
            self.assertNotEqual(after, before, kind)
            before = after

    def test_gpu_droplets_are_left_out_of_default_and_tag_lists(self):
        gpu, _ = self.create(name="gm-gpu", size="gpu-h100x1-80gb", region="tor1",
                             image="gpu-h100x1-base", tags=["gm"])
        cpu, _ = self.create(name="gm-cpu", tags=["gm"])
        ids = lambda q: [d["id"] for d in self.ok("GET", "/v2/droplets" + q)["droplets"]]  # noqa
        self.assertEqual(ids(""), [cpu["id"]])
        self.assertEqual(ids("?tag_name=gm"), [cpu["id"]])
        self.assertEqual(ids("?type=gpus"), [gpu["id"]])
        self.assertEqual(self.emu.api("GET", "/v2/droplets?tag_name=gm&type=gpus")[0], 400)

    def test_422_texts_for_region_capacity_limit_and_duplicate_key(self):
        def err(body):
            status, data, _ = self.emu.api("POST", "/v2/droplets", {
                "name": "gm-x", "size": "gpu-h100x1-80gb", "image": "gpu-h100x1-base", **body})
            self.assertEqual(status, 422, data)
            return data
        self.assertEqual(err({"region": "nyc3"})["message"], "Size is not available in this region.")
        self.emu.control("config", {"capacity": {"tor1": {"gpu-h100x1-80gb": "The size you "
                         "selected is temporarily unavailable because of server capacity"}}})
        data = err({"region": "tor1"})
        self.assertIn("capacity", data["message"])
        self.assertIn("nyc2", data["error_attributes"]["available_regions"])
        self.assertIn("hostname", err({"region": "nyc2", "name": "bad_name"})["message"])
        self.emu.control("config", {"droplet_limit": 0})
        self.assertIn("droplet limit", err({"region": "nyc2"})["message"])
        self.add_key()
        status, data, _ = self.emu.api("POST", "/v2/account/keys",
                                       {"name": "again", "public_key": self.keys["client_pub"]})
        self.assertEqual((status, data["message"]),
                         (422, "SSH Key is already in use on your account"))

    def test_key_by_md5_fingerprint_and_the_key_list_limit(self):
        key = self.add_key()
        out = subprocess.run(["ssh-keygen", "-E", "md5", "-lf", str(self.tmp / "client.pub")],
                             capture_output=True, text=True, check=True).stdout
        self.assertEqual("MD5:" + key["fingerprint"], out.split()[1])
        self.assertEqual(self.ok("GET", f"/v2/account/keys/{key['fingerprint']}")["ssh_key"]["id"],
                         key["id"])
        for _ in range(10):
            self.ok("GET", "/v2/account/keys")
        status, data, headers = self.emu.api("GET", "/v2/account/keys")
        self.assertEqual((status, data["id"]), (429, "too_many_requests"))
        self.assertGreater(int(headers["retry-after"]), 0)
        self.ok("DELETE", f"/v2/account/keys/{key['id']}", want=204)
        self.assertEqual(self.emu.api("GET", f"/v2/account/keys/{key['id']}")[0], 404)

    def test_firewall_waits_then_succeeds_and_follows_deleted_droplets(self):
        droplet, _ = self.create()
        rule = {"protocol": "tcp", "ports": "22", "sources": {"addresses": ["127.0.0.1/32"]}}
        fw = self.ok("POST", "/v2/firewalls", {"name": "gm-m1", "inbound_rules": [rule],
                                              "droplet_ids": [droplet["id"]]}, 202)["firewall"]
        self.assertEqual(fw["status"], "waiting")
        wait_for(lambda: self.ok("GET", f"/v2/firewalls/{fw['id']}")["firewall"]["status"]
                 == "succeeded")
        wide = dict(rule, sources={"addresses": ["10.0.0.0/8"]})
        put = self.ok("PUT", f"/v2/firewalls/{fw['id']}", {"name": "gm-m1", "inbound_rules": [wide]})
        self.assertEqual((put["firewall"]["inbound_rules"], put["firewall"]["droplet_ids"]),
                         ([wide], []))  # PUT replaces the whole object: omitted fields reset
        status, _, _ = self.emu.api("POST", "/v2/firewalls", {"name": "x", "inbound_rules": [rule]})
        self.assertEqual(status, 422)   # the name needs two characters
        status, _, _ = self.emu.api("POST", "/v2/firewalls", {"name": "gm-t", "tags": ["nope"],
                                                             "inbound_rules": [rule]})
        self.assertEqual(status, 422)   # firewall tags must exist
        self.ok("DELETE", f"/v2/droplets/{droplet['id']}", want=204)
        self.ok("DELETE", f"/v2/firewalls/{fw['id']}", want=204)
        self.assertEqual(self.emu.api("DELETE", f"/v2/firewalls/{fw['id']}")[0], 404)

    def test_tags_404_when_unknown_and_400_shape(self):
        droplet, _ = self.create()
        body = {"resources": [{"resource_id": str(droplet["id"]), "resource_type": "droplet"}]}
        self.assertEqual(self.emu.api("POST", "/v2/tags/nope/resources", body)[0], 404)
        self.ok("POST", "/v2/tags", {"name": "team:ml"}, 201)
        self.ok("POST", "/v2/tags/team:ml/resources", body, 204)
        self.assertIn("team:ml", self.droplet(droplet["id"])["tags"])
        status, data, _ = self.emu.api("POST", "/v2/tags", {"name": "a=b"})
        self.assertEqual(status, 400)
        self.assertIn("root_causes", data)

    def test_injected_faults_and_rate_limit(self):
        self.emu.control("faults", [{"kind": "429", "path": "/v2/sizes", "retry_after": 2},
                                    {"kind": "503", "path": "/v2/sizes"}])
        status, data, headers = self.emu.api("GET", "/v2/sizes")
        self.assertEqual((status, data["message"], headers["retry-after"]),
                         (429, "API Rate limit exceeded.", "2"))
        status, data, _ = self.emu.api("GET", "/v2/sizes")
        self.assertEqual((status, data["id"]), (503, "server_error"))
        self.ok("GET", "/v2/sizes")
        self.emu.control("faults", {"kind": "drop_after", "method": "POST", "path": "/v2/droplets"})
        with self.assertRaises((http.client.HTTPException, ConnectionError)):
            self.emu.api("POST", "/v2/droplets", {"name": "gm-lost", "size": "s-1vcpu-1gb",
                                                  "image": "ubuntu-24-04-x64", "tags": ["req:1"]})
        self.assertEqual(len(self.ok("GET", "/v2/droplets?tag_name=req:1")["droplets"]), 1)
        self.emu.control("config", {"rate_limit": {"per_minute": 2}})
        codes = [self.emu.api("GET", "/v2/account")[0] for _ in range(4)]
        self.assertIn(429, codes)

    def test_guest_poweroff_leaves_the_droplet_off_and_billed(self):
        droplet, _ = self.create()
        self.wait_status(droplet["id"], "active")
        self.emu.control(f"poweroff?instance={droplet['id']}", {})
        self.wait_status(droplet["id"], "off")
        self.assertIn(str(droplet["id"]), self.emu.state()["droplets"])


if __name__ == "__main__":
    unittest.main()
