"""Tests for the EC2 emulator (tools/ec2_emulator), stdlib unittest.

Run: python3 -m unittest discover -s tests/emulator

botocore (python3-botocore) is used, when importable, as the independent SigV4 signer; a small
signer written here covers the same ground without it and lets tests forge bad requests.
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import http.client
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse
import urllib.request
import uuid
import xml.etree.ElementTree as ET
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EMULATOR = ROOT / "tools" / "ec2_emulator" / "ec2_emulator.py"
AKID = "AKIDEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
UBUNTU_PARAM = "/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id"
IS_ROOT = os.geteuid() == 0

os.environ["NO_PROXY"] = "127.0.0.1,localhost"
try:
    import botocore.config
    import botocore.exceptions
    import botocore.session
    HAVE_BOTOCORE = True
except ImportError:  # pragma: no cover - botocore is optional
    HAVE_BOTOCORE = False


# -- a small independent SigV4 signer (for forged requests) --------------------------------------
def sign(method: str, host: str, body: bytes, service: str, region: str, *,
         akid: str = AKID, secret: str = SECRET, token: str | None = None,
         when: dt.datetime | None = None, extra: dict[str, str] | None = None,
         query: str = "") -> dict[str, str]:
    when = when or dt.datetime.now(dt.timezone.utc)
    amz_date = when.strftime("%Y%m%dT%H%M%SZ")
    headers = {"host": host, "x-amz-date": amz_date, **(extra or {})}
    if token:
        headers["x-amz-security-token"] = token
    names = sorted(headers)
    pairs = sorted(urllib.parse.parse_qsl(query, keep_blank_values=True))
    cq = "&".join(f"{urllib.parse.quote(k, safe='-_.~')}={urllib.parse.quote(v, safe='-_.~')}"
                  for k, v in pairs)
    canonical = "\n".join([method, "/", cq, "".join(f"{n}:{headers[n].strip()}\n" for n in names),
                           ";".join(names), hashlib.sha256(body).hexdigest()])
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    key = ("AWS4" + secret).encode()
    for part in (amz_date[:8], region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    sig = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (f"AWS4-HMAC-SHA256 Credential={akid}/{scope}, "
                                f"SignedHeaders={';'.join(names)}, Signature={sig}")
    return headers


def local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def find_text(root: ET.Element, name: str) -> str | None:
    for el in root.iter():
        if local(el.tag) == name:
            return el.text
    return None


def find_all(root: ET.Element, name: str) -> list[str]:
    return [el.text or "" for el in root.iter() if local(el.tag) == name]


class Emulator:
    """Starts the emulator as a subprocess on a free port with its own state dir."""
    script = EMULATOR

    def __init__(self, state_dir: Path, config: dict) -> None:
        self.state_dir = state_dir
        self.config = config
        self.proc: subprocess.Popen | None = None
        self.port = 0

    def start(self) -> "Emulator":
        cfg = self.state_dir.parent / f"{self.state_dir.name}-config.json"
        cfg.write_text(json.dumps(self.config))
        self.proc = subprocess.Popen(
            [sys.executable, str(self.script), "--state-dir", str(self.state_dir), "--port", "0",
             "--config", str(cfg)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if line.startswith("READY "):
                self.port = int(line.split()[1])
                return self
            if not line and self.proc.poll() is not None:
                break
        raise RuntimeError("emulator did not become ready")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None and self.proc.stdout:
            self.proc.stdout.close()

    # -- HTTP helpers ------------------------------------------------------------------
    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def control(self, name: str, payload=None, method: str | None = None) -> dict:
        data = json.dumps(payload).encode() if payload is not None else None
        req = urllib.request.Request(f"http://{self.host}/_emulator/{name}", data=data,
                                     method=method or ("POST" if data is not None else "GET"))
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())

    def state(self) -> dict:
        return self.control("state")

    def raw(self, body: bytes, headers: dict[str, str], method: str = "POST",
            query: str = "") -> tuple[int, bytes, dict]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, "/" + (f"?{query}" if query else ""), body=body or None,
                         headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.read(), dict(resp.getheaders())
        finally:
            conn.close()

    def query(self, params: dict[str, str], region: str = "us-east-1", **kw) -> tuple[int, ET.Element]:
        body = urllib.parse.urlencode({"Version": "2016-11-15", **params}).encode()
        headers = sign("POST", self.host, body, kw.pop("service", "ec2"), region,
                       extra={"content-type": "application/x-www-form-urlencoded; charset=utf-8"},
                       **kw)
        status, data, _ = self.raw(body, headers)
        return status, ET.fromstring(data)

    def boto(self, service: str, region: str = "us-east-1", retries: int = 1, **creds):
        session = botocore.session.get_session()
        return session.create_client(
            service, region_name=region, endpoint_url=f"http://{self.host}",
            aws_access_key_id=creds.get("akid", AKID),
            aws_secret_access_key=creds.get("secret", SECRET),
            aws_session_token=creds.get("token"),
            config=botocore.config.Config(retries={"mode": "standard", "max_attempts": retries}))


def make_keys(directory: Path) -> dict[str, str]:
    for name in ("client", "host"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name,
                        "-f", str(directory / name)], check=True)
    return {"client_pub": (directory / "client.pub").read_text().strip(),
            "host_priv": (directory / "host").read_text(),
            "host_pub": (directory / "host.pub").read_text().strip()}


def cloud_config(host_priv: str, host_pub: str) -> str:
    indented = "".join(f"    {line}\n" for line in host_priv.splitlines())
    return f"#cloud-config\nssh_keys:\n  ed25519_private: |\n{indented}  ed25519_public: {host_pub}\n"


def mime_user_data(host_priv: str, host_pub: str) -> str:
    msg = MIMEMultipart()
    msg.attach(MIMEText(cloud_config(host_priv, host_pub), "cloud-config"))
    msg.attach(MIMEText("#!/bin/sh\necho hello\n", "x-shellscript"))
    return msg.as_string()


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met in time")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (ProcessLookupError, FileNotFoundError):
        return False


def base_config(ssh_port: int) -> dict:
    octet = random.randint(20, 250)
    return {"delays": {"pending": 0.3, "stopping": 0.3, "stopping_force": 0.1,
                       "shutting_down": 0.3, "reboot": 0.3},
            "terminated_visible_s": 30,
            "ip_pool": {"first": f"127.{octet}.1.1", "last": f"127.{octet}.200.254"},
            "ssh_port": ssh_port}


class EmulatorTestBase(unittest.TestCase):
    emu: Emulator
    tmp: Path
    keys: dict[str, str]
    ssh_port = 22 if IS_ROOT else random.randint(20000, 30000)

    @classmethod
    def setUpClass(cls) -> None:
        cls.tmp = Path(tempfile.mkdtemp(prefix="ec2emu-test-"))
        cls.keys = make_keys(cls.tmp)
        cls.emu = Emulator(cls.tmp / "state", base_config(cls.ssh_port)).start()

    @classmethod
    def tearDownClass(cls) -> None:
        cls.emu.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self) -> None:
        self.emu.control("reset", {})

    # -- helpers ----------------------------------------------------------------------
    def ami(self, region: str = "us-east-1") -> str:
        body = json.dumps({"Name": UBUNTU_PARAM}).encode()
        headers = sign("POST", self.emu.host, body, "ssm", region,
                       extra={"content-type": "application/x-amz-json-1.1",
                              "x-amz-target": "AmazonSSM.GetParameter"})
        status, data, _ = self.emu.raw(body, headers)
        self.assertEqual(status, 200, data)
        return json.loads(data)["Parameter"]["Value"]

    def import_key(self, name: str = "k1") -> None:
        status, root = self.emu.query({"Action": "ImportKeyPair", "KeyName": name,
                                       "PublicKeyMaterial": base64.b64encode(
                                           self.keys["client_pub"].encode()).decode()})
        self.assertEqual(status, 200, ET.tostring(root))

    def run_params(self, **extra: str) -> dict[str, str]:
        params = {"Action": "RunInstances", "ImageId": self.ami(), "InstanceType": "g5.xlarge",
                  "MinCount": "1", "MaxCount": "1", "KeyName": "k1",
                  "ClientToken": str(uuid.uuid4())}
        params.update(extra)
        return params

    def launch(self, **extra: str) -> str:
        status, root = self.emu.query(self.run_params(**extra))
        self.assertEqual(status, 200, ET.tostring(root))
        return find_text(root, "instanceId")

    def instance(self, iid: str) -> dict:
        for region in self.emu.state()["regions"].values():
            if iid in region["instances"]:
                return region["instances"][iid]
        raise AssertionError(f"{iid} not in state")

    def wait_state(self, iid: str, state: str, timeout: float = 10.0) -> dict:
        return wait_for(lambda: (lambda i: i if i["state"] == state else None)(self.instance(iid)),
                        timeout)

    def ssh(self, address: str, command: str = "true", known_hosts: str | None = None):
        kh = self.tmp / "known_hosts"
        host = address if self.ssh_port == 22 else f"[{address}]:{self.ssh_port}"
        kh.write_text(f"{host} {known_hosts or self.keys['host_pub']}\n")
        return subprocess.run(
            ["ssh", "-i", str(self.tmp / "client"), "-p", str(self.ssh_port),
             "-o", f"UserKnownHostsFile={kh}", "-o", "StrictHostKeyChecking=yes",
             "-o", "BatchMode=yes", "-o", "ConnectTimeout=5", "-F", "/dev/null",
             f"{os.environ.get('USER', 'root') if not IS_ROOT else 'root'}@{address}", command],
            capture_output=True, text=True, timeout=20)

    def ssh_ready(self, iid: str) -> dict:
        def ready():
            inst = self.instance(iid)
            return inst if inst.get("sshd_pid") and inst.get("sshd_address") else None
        inst = wait_for(ready, 10)
        wait_for(lambda: self.ssh(inst["publicIp"]).returncode == 0, 10, 0.2)
        return inst

    def assert_error(self, status_root, code: str, status: int | None = None) -> None:
        got_status, root = status_root
        self.assertEqual(find_text(root, "Code"), code, ET.tostring(root))
        if status is not None:
            self.assertEqual(got_status, status)
        self.assertIsNotNone(find_text(root, "RequestID"))


class SigV4Tests(EmulatorTestBase):
    def test_manual_signature_accepted_and_forgeries_rejected(self):
        ok = self.emu.query({"Action": "DescribeRegions"})
        self.assertEqual(ok[0], 200)
        self.assertIn("us-east-1", find_all(ok[1], "regionName"))
        self.assert_error(self.emu.query({"Action": "DescribeRegions"}, secret="wrong"),
                          "SignatureDoesNotMatch", 403)
        self.assert_error(self.emu.query({"Action": "DescribeRegions"}, akid="AKIDUNKNOWN"),
                          "AuthFailure", 401)
        skewed = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=6)
        self.assert_error(self.emu.query({"Action": "DescribeRegions"}, when=skewed),
                          "RequestExpired", 400)
        self.assert_error(self.emu.query({"Action": "DescribeRegions"}, service="ssm"),
                          "SignatureDoesNotMatch", 403)
        # body changed after signing
        body = b"Action=DescribeRegions&Version=2016-11-15"
        headers = sign("POST", self.emu.host, body, "ec2", "us-east-1",
                       extra={"content-type": "application/x-www-form-urlencoded"})
        status, data, _ = self.emu.raw(body.replace(b"Regions", b"Regionz"), headers)
        self.assertEqual((status, find_text(ET.fromstring(data), "Code")),
                         (403, "SignatureDoesNotMatch"))
        status, data, _ = self.emu.raw(body, {"content-type": "application/x-www-form-urlencoded"})
        self.assertEqual(find_text(ET.fromstring(data), "Code"), "MissingAuthenticationToken")

    def test_get_with_query_string_is_verified(self):
        query = "Action=DescribeAvailabilityZones&Version=2016-11-15"
        headers = sign("GET", self.emu.host, b"", "ec2", "eu-west-1", query=query)
        status, data, _ = self.emu.raw(b"", headers, method="GET", query=query)
        self.assertEqual(status, 200, data)
        self.assertEqual(find_all(ET.fromstring(data), "zoneName"),
                         ["eu-west-1a", "eu-west-1b", "eu-west-1c"])

    @unittest.skipUnless(HAVE_BOTOCORE, "botocore not installed")
    def test_botocore_signed_requests_and_assume_role(self):
        ec2 = self.emu.boto("ec2", "us-west-2")
        zones = [z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"]]
        self.assertEqual(zones, ["us-west-2a", "us-west-2b", "us-west-2c", "us-west-2d"])
        bad = self.emu.boto("ec2", secret="not-the-secret")
        with self.assertRaises(botocore.exceptions.ClientError) as ctx:
            bad.describe_regions()
        self.assertEqual(ctx.exception.response["Error"]["Code"], "SignatureDoesNotMatch")
        sts = self.emu.boto("sts")
        self.assertEqual(sts.get_caller_identity()["Account"], "123456789012")
        creds = sts.assume_role(RoleArn="arn:aws:iam::123456789012:role/gpu",
                                RoleSessionName="t1")["Credentials"]
        temp = dict(akid=creds["AccessKeyId"], secret=creds["SecretAccessKey"])
        who = self.emu.boto("sts", token=creds["SessionToken"], **temp).get_caller_identity()
        self.assertIn("assumed-role/gpu/t1", who["Arn"])
        self.emu.boto("ec2", token=creds["SessionToken"], **temp).describe_regions()
        with self.assertRaises(botocore.exceptions.ClientError) as ctx:
            self.emu.boto("ec2", **temp).describe_regions()       # token missing
        self.assertEqual(ctx.exception.response["Error"]["Code"], "AuthFailure")
        # botocore signs Query-protocol presigned URLs with method POST
        url = ec2.generate_presigned_url("describe_regions", ExpiresIn=300)
        parsed = urllib.parse.urlsplit(url)
        status, data, _ = self.emu.raw(b"", {"host": self.emu.host}, method="POST",
                                       query=parsed.query)
        self.assertEqual(status, 200, data)
        status, data, _ = self.emu.raw(b"", {"host": self.emu.host}, method="POST",
                                       query=parsed.query.replace("DescribeRegions", "DescribeVpcs"))
        self.assertEqual(find_text(ET.fromstring(data), "Code"), "SignatureDoesNotMatch")
        ssm = self.emu.boto("ssm")
        value = ssm.get_parameter(Name=UBUNTU_PARAM)["Parameter"]["Value"]
        self.assertTrue(value.startswith("ami-"))
        with self.assertRaises(botocore.exceptions.ClientError) as ctx:
            ssm.get_parameter(Name="/aws/service/nope")
        self.assertEqual(ctx.exception.response["Error"]["Code"], "ParameterNotFound")
        got = ssm.get_parameters(Names=[UBUNTU_PARAM, "/nope"])
        self.assertEqual(got["InvalidParameters"], ["/nope"])


class LaunchTests(EmulatorTestBase):
    def test_launch_run_ssh_with_injected_host_key_and_lifecycle(self):
        self.import_key()
        user_data = mime_user_data(self.keys["host_priv"], self.keys["host_pub"])
        iid = self.launch(**{
            "UserData": base64.b64encode(user_data.encode()).decode(),
            "MetadataOptions.HttpTokens": "required",
            "MetadataOptions.HttpPutResponseHopLimit": "2",
            "BlockDeviceMapping.1.DeviceName": "/dev/sda1",
            "BlockDeviceMapping.1.Ebs.VolumeSize": "200",
            "BlockDeviceMapping.1.Ebs.VolumeType": "gp3",
            "InstanceInitiatedShutdownBehavior": "terminate",
            "TagSpecification.1.ResourceType": "instance",
            "TagSpecification.1.Tag.1.Key": "gpumachine", "TagSpecification.1.Tag.1.Value": "m1",
            "TagSpecification.2.ResourceType": "volume",
            "TagSpecification.2.Tag.1.Key": "gpumachine", "TagSpecification.2.Tag.1.Value": "m1"})
        self.assertEqual(self.instance(iid)["state"], "pending")
        self.assertIsNone(self.instance(iid)["publicIp"])
        inst = self.ssh_ready(iid)
        self.assertTrue(inst["publicIp"].startswith("127."))
        self.assertEqual(inst["metadataOptions"]["httpTokens"], "required")
        self.assertEqual(inst["metadataOptions"]["httpPutResponseHopLimit"], 2)
        self.assertEqual(inst["shutdownBehavior"], "terminate")
        self.assertEqual(inst["tags"], {"gpumachine": "m1"})
        vols = self.emu.state()["regions"]["us-east-1"]["volumes"]
        root = vols[inst["blockDevices"][0]["volumeId"]]
        self.assertEqual((root["size"], root["volumeType"], root["tags"]),
                         (200, "gp3", {"gpumachine": "m1"}))
        # a different host key must be refused: proves the user-data key is served
        wrong = self.ssh(inst["publicIp"], known_hosts=self.keys["client_pub"])
        self.assertNotEqual(wrong.returncode, 0)
        self.assertIn("verification failed", wrong.stderr)
        # DescribeInstances through the API
        status, root_el = self.emu.query({"Action": "DescribeInstances",
                                          "Filter.1.Name": "tag:gpumachine",
                                          "Filter.1.Value.1": "m1",
                                          "Filter.2.Name": "instance-state-name",
                                          "Filter.2.Value.1": "running"})
        self.assertEqual(find_text(root_el, "ipAddress"), inst["publicIp"])
        self.assertEqual(find_text(root_el, "httpTokens"), "required")
        # power-off from inside: shutdown behaviour terminate -> terminated, sshd gone
        pid = inst["sshd_pid"]
        self.emu.control(f"poweroff?instance={iid}", {})
        self.wait_state(iid, "terminated")
        wait_for(lambda: not pid_alive(pid), 5)
        self.assertEqual(self.emu.state()["regions"]["us-east-1"]["volumes"], {})

    def test_guest_power_commands_follow_the_shutdown_behaviour(self):
        # The guest's own poweroff (an autostop agent) reaches the emulator through the guest_bin
        # stubs: stop behaviour -> stopped, terminate -> terminated; other systemctl uses pass on.
        self.import_key()
        ud = cloud_config(self.keys["host_priv"], self.keys["host_pub"])
        for behaviour, command, final in (("stop", "systemctl poweroff", "stopped"),
                                          ("terminate", "shutdown -h now", "terminated")):
            iid = self.launch(UserData=base64.b64encode(ud.encode()).decode(),
                              InstanceInitiatedShutdownBehavior=behaviour)
            inst = self.ssh_ready(iid)
            which = self.ssh(inst["publicIp"], "command -v systemctl poweroff")
            self.assertIn("guest_bin/systemctl", which.stdout)
            self.ssh(inst["publicIp"], command)
            self.wait_state(iid, final)
            wait_for(lambda: not pid_alive(inst["sshd_pid"]), 5)
            self.assertEqual(self.instance(iid)["stateReason"]["code"],
                             "Client.InstanceInitiatedShutdown")

    def test_stop_start_moves_to_new_address_and_kills_sshd(self):
        self.import_key()
        ud = cloud_config(self.keys["host_priv"], self.keys["host_pub"])
        iid = self.launch(UserData=base64.b64encode(ud.encode()).decode())
        first = self.ssh_ready(iid)
        status, root = self.emu.query({"Action": "StopInstances", "InstanceId.1": iid})
        self.assertEqual(find_all(root, "name"), ["stopping", "running"])
        self.wait_state(iid, "stopped")
        wait_for(lambda: not pid_alive(first["sshd_pid"]), 5)
        self.assertNotEqual(self.ssh(first["publicIp"]).returncode, 0)
        self.emu.query({"Action": "StartInstances", "InstanceId.1": iid})
        second = self.ssh_ready(iid)
        self.assertNotEqual(second["publicIp"], first["publicIp"])
        self.assert_error(self.emu.query({"Action": "StartInstances",
                                          "InstanceId.1": "i-0123456789abcdef0"}),
                          "InvalidInstanceID.NotFound", 400)

    def test_ssh_delay_and_reboot_restart_the_sshd(self):
        self.emu.control("config", {"ssh_delay": 0.8})
        self.import_key()
        ud = cloud_config(self.keys["host_priv"], self.keys["host_pub"])
        iid = self.launch(UserData=base64.b64encode(ud.encode()).decode())
        running = self.wait_state(iid, "running")
        self.assertIsNone(running["sshd_pid"], "sshd must wait for ssh_delay")
        first = self.ssh_ready(iid)
        self.assertGreaterEqual(time.time() - first["running_since"], 0.8)
        status, root = self.emu.query({"Action": "RebootInstances", "InstanceId.1": iid})
        self.assertEqual(find_text(root, "return"), "true")
        wait_for(lambda: not pid_alive(first["sshd_pid"]), 5)
        second = self.ssh_ready(iid)
        self.assertNotEqual(second["sshd_pid"], first["sshd_pid"])
        self.assertEqual(second["publicIp"], first["publicIp"])

    def test_reboot_restarts_the_sshd_even_when_no_tick_falls_in_the_reboot_window(self):
        # A zero-length window stands for a loaded machine whose ticker missed the whole reboot.
        self.emu.control("config", {"delays": {"reboot": 0.0}})
        self.import_key()
        ud = cloud_config(self.keys["host_priv"], self.keys["host_pub"])
        iid = self.launch(UserData=base64.b64encode(ud.encode()).decode())
        self.wait_state(iid, "running")
        first = self.ssh_ready(iid)
        status, root = self.emu.query({"Action": "RebootInstances", "InstanceId.1": iid})
        self.assertEqual(find_text(root, "return"), "true")
        wait_for(lambda: not pid_alive(first["sshd_pid"]), 5)
        second = self.ssh_ready(iid)
        self.assertNotEqual(second["sshd_pid"], first["sshd_pid"])

    def test_every_boot_has_a_boot_id_of_its_own_that_names_the_test_machine(self):
        # gpumachine's restart waits for a boot id other than the one before the reboot: a reboot
        # the client never saw happen (over before it looked) must still show as a new boot.
        self.emu.control("config", {"delays": {"reboot": 0.0}})
        self.import_key()
        ud = cloud_config(self.keys["host_priv"], self.keys["host_pub"])
        iid = self.launch(UserData=base64.b64encode(ud.encode()).decode())
        first = self.ssh_ready(iid)
        read = 'cat "$GM_SYSROOT/proc/sys/kernel/random/boot_id"'
        before = self.ssh(first["publicIp"], read).stdout.strip()
        # The test binary refuses to provision the machine that runs the tests by its boot id.
        with open("/proc/sys/kernel/random/boot_id") as fh:
            self.assertTrue(before.startswith(fh.read().strip()), before)
        self.emu.query({"Action": "RebootInstances", "InstanceId.1": iid})
        wait_for(lambda: not pid_alive(first["sshd_pid"]), 5)
        second = self.ssh_ready(iid)
        rebooted = self.ssh(second["publicIp"], read).stdout.strip()
        self.assertNotEqual(rebooted, before)
        # An sshd that dies and is started again is not a new boot.
        os.kill(second["sshd_pid"], signal.SIGKILL)
        wait_for(lambda: self.instance(iid).get("sshd_pid") not in (None, second["sshd_pid"]), 10)
        third = self.ssh_ready(iid)
        self.assertEqual(self.ssh(third["publicIp"], read).stdout.strip(), rebooted)
        # Stop and start is a boot too.
        self.emu.query({"Action": "StopInstances", "InstanceId.1": iid})
        self.wait_state(iid, "stopped")
        self.emu.query({"Action": "StartInstances", "InstanceId.1": iid})
        fourth = self.ssh_ready(iid)
        self.assertNotIn(self.ssh(fourth["publicIp"], read).stdout.strip(), (before, rebooted))

    def test_reboot_begins_late_and_the_host_keeps_the_key_it_replaced(self):
        self.emu.control("config", {"delays": {"reboot_begin": 0.5}})
        self.import_key()
        ud = cloud_config(self.keys["host_priv"], self.keys["host_pub"])
        iid = self.launch(UserData=base64.b64encode(ud.encode()).decode())
        self.wait_state(iid, "running")
        first = self.ssh_ready(iid)
        # Sessions see the instance's root; cloud-init's host key is there, under etc/ssh.
        out = self.ssh(first["publicIp"], 'echo "$GM_SYSROOT"')
        root = Path(out.stdout.strip())
        key = root / "etc/ssh/ssh_host_ed25519_key"
        self.assertTrue(key.exists(), out)
        # The guest replaces its host key and reloads sshd, as `systemctl reload ssh` does.
        key.unlink()
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)],
                       check=True, stdin=subprocess.DEVNULL)
        new_pub = " ".join(Path(str(key) + ".pub").read_text().split()[:2])
        os.kill(int((root / "run/sshd.pid").read_text()), signal.SIGHUP)
        wait_for(lambda: self.ssh(first["publicIp"], known_hosts=new_pub).returncode == 0, 10, 0.2)
        self.assertNotEqual(self.ssh(first["publicIp"]).returncode, 0, "old key still served")
        # A reboot keeps the key the host made (cloud-init writes user-data keys once).
        status, root_xml = self.emu.query({"Action": "RebootInstances", "InstanceId.1": iid})
        self.assertEqual(find_text(root_xml, "return"), "true")
        wait_for(lambda: not pid_alive(first["sshd_pid"]), 5)
        wait_for(lambda: self.instance(iid).get("sshd_pid"), 10)
        wait_for(lambda: self.ssh(first["publicIp"], known_hosts=new_pub).returncode == 0, 10, 0.2)

    def test_client_token_idempotency(self):
        self.import_key()
        params = self.run_params()
        status, first = self.emu.query(params)
        status2, second = self.emu.query(params)
        self.assertEqual(find_text(first, "instanceId"), find_text(second, "instanceId"))
        self.assertEqual(find_text(first, "reservationId"), find_text(second, "reservationId"))
        changed = dict(params, InstanceType="g5.2xlarge")
        self.assert_error(self.emu.query(changed), "IdempotentParameterMismatch", 400)
        self.assertEqual(len(self.emu.state()["regions"]["us-east-1"]["instances"]), 1)
        status, listed = self.emu.query({"Action": "DescribeInstances",
                                         "Filter.1.Name": "client-token",
                                         "Filter.1.Value.1": params["ClientToken"]})
        self.assertEqual(find_all(listed, "instanceId"), [find_text(first, "instanceId")])

    def test_drop_after_then_retry_with_same_token_gives_no_duplicate(self):
        self.import_key()
        params = self.run_params()
        self.emu.control("faults", {"action": "RunInstances", "kind": "drop_after", "count": 1})
        with self.assertRaises((http.client.HTTPException, ConnectionError)):
            self.emu.query(params)
        status, root = self.emu.query(params)
        self.assertEqual(status, 200)
        instances = self.emu.state()["regions"]["us-east-1"]["instances"]
        self.assertEqual(list(instances), [find_text(root, "instanceId")])
        calls = [c for c in self.emu.control("calls")["calls"] if c["action"] == "RunInstances"]
        self.assertEqual([c["error"] for c in calls], ["dropped", None])

    @unittest.skipUnless(HAVE_BOTOCORE, "botocore not installed")
    def test_botocore_retries_through_throttle_and_5xx(self):
        self.emu.control("faults", [{"action": "DescribeRegions", "kind": "throttle"},
                                    {"action": "DescribeRegions", "kind": "http503"}])
        ec2 = self.emu.boto("ec2", retries=3)
        ec2.meta.events.register("before-sleep.*", lambda **kw: None)
        self.assertTrue(ec2.describe_regions()["Regions"])
        calls = [c["error"] for c in self.emu.control("calls")["calls"]]
        self.assertEqual(calls, ["RequestLimitExceeded", "Unavailable", None])

    def test_dependency_violation_while_shutting_down(self):
        self.emu.control("config", {"delays": {"shutting_down": 1.0}})
        self.import_key()
        status, root = self.emu.query({"Action": "CreateSecurityGroup", "GroupName": "gm-1",
                                       "GroupDescription": "gpumachine"})
        gid = find_text(root, "groupId")
        self.assert_error(self.emu.query({"Action": "CreateSecurityGroup", "GroupName": "gm-1",
                                          "GroupDescription": "again"}), "InvalidGroup.Duplicate")
        iid = self.launch(**{"SecurityGroupId.1": gid})
        self.emu.query({"Action": "TerminateInstances", "InstanceId.1": iid})
        self.assertEqual(self.instance(iid)["state"], "shutting-down")
        self.assert_error(self.emu.query({"Action": "DeleteSecurityGroup", "GroupId": gid}),
                          "DependencyViolation", 400)
        self.wait_state(iid, "terminated")
        self.assertEqual(self.emu.query({"Action": "DeleteSecurityGroup", "GroupId": gid})[0], 200)
        self.assert_error(self.emu.query({"Action": "DeleteSecurityGroup", "GroupId": gid}),
                          "InvalidGroup.NotFound")

    def test_capacity_and_offerings_per_zone(self):
        self.import_key()
        self.emu.control("config", {"capacity": {"us-east-1a": {
            "g5.xlarge": "InsufficientInstanceCapacity"}}})
        self.assert_error(self.emu.query(self.run_params(**{
            "Placement.AvailabilityZone": "us-east-1a"})), "InsufficientInstanceCapacity", 500)
        self.assert_error(self.emu.query(self.run_params(**{
            "Placement.AvailabilityZone": "us-east-1e"})), "Unsupported", 400)
        iid = self.launch(**{"Placement.AvailabilityZone": "us-east-1b"})
        self.assertEqual(self.instance(iid)["availabilityZone"], "us-east-1b")
        status, root = self.emu.query({"Action": "DescribeInstanceTypeOfferings",
                                       "LocationType": "availability-zone",
                                       "Filter.1.Name": "instance-type",
                                       "Filter.1.Value.1": "g5.xlarge"})
        locations = find_all(root, "location")
        self.assertIn("us-east-1a", locations)
        self.assertNotIn("us-east-1e", locations)

    def test_validation_errors(self):
        self.import_key()
        self.assert_error(self.emu.query({"Action": "FlyToTheMoon"}), "InvalidAction", 400)
        self.assert_error(self.emu.query(self.run_params(InstanceType="g9.huge")),
                          "InvalidParameterValue")
        self.assert_error(self.emu.query(self.run_params(ImageId="ami-0123456789abcdef0")),
                          "InvalidAMIID.NotFound")
        self.assert_error(self.emu.query(self.run_params(InstanceType="g5g.xlarge")),
                          "InvalidParameterValue")      # arm64 type, x86_64 AMI
        self.assert_error(self.emu.query(self.run_params(KeyName="nope")),
                          "InvalidKeyPair.NotFound")
        self.assert_error(self.emu.query(self.run_params(**{"SecurityGroupIds.member.1": "x"})),
                          "UnknownParameter")
        self.assert_error(self.emu.query(self.run_params(**{
            "BlockDeviceMapping.1.DeviceName": "/dev/sda1",
            "BlockDeviceMapping.1.Ebs.VolumeSize": "4"})), "InvalidBlockDeviceMapping")
        self.assert_error(self.emu.query({"Action": "ImportKeyPair", "KeyName": "k1",
                                          "PublicKeyMaterial": base64.b64encode(
                                              self.keys["client_pub"].encode()).decode()}),
                          "InvalidKeyPair.Duplicate")
        self.assert_error(self.emu.query(self.run_params(DryRun="true")), "DryRunOperation", 412)
        self.assertEqual(self.emu.state()["regions"]["us-east-1"]["instances"], {})
        # AMIs are regional
        self.assert_error(self.emu.query(self.run_params(), region="us-west-2"),
                          "InvalidAMIID.NotFound")

    def test_eventual_consistency_window(self):
        self.import_key()
        self.emu.control("config", {"consistency_delay": 1.0})
        iid = self.launch()
        self.assert_error(self.emu.query({"Action": "DescribeInstances", "InstanceId.1": iid}),
                          "InvalidInstanceID.NotFound", 400)
        status, root = self.emu.query({"Action": "CreateSecurityGroup", "GroupName": "ec",
                                       "GroupDescription": "d"})
        gid = find_text(root, "groupId")
        self.assert_error(self.emu.query({
            "Action": "AuthorizeSecurityGroupIngress", "GroupId": gid,
            "IpPermissions.1.IpProtocol": "tcp", "IpPermissions.1.FromPort": "22",
            "IpPermissions.1.ToPort": "22", "IpPermissions.1.IpRanges.1.CidrIp": "127.0.0.1/32"}),
            "InvalidGroup.NotFound")
        time.sleep(1.1)
        status, root = self.emu.query({"Action": "DescribeInstances", "InstanceId.1": iid})
        self.assertEqual(find_all(root, "instanceId"), [iid])
        status, _ = self.emu.query({
            "Action": "AuthorizeSecurityGroupIngress", "GroupId": gid,
            "IpPermissions.1.IpProtocol": "tcp", "IpPermissions.1.FromPort": "22",
            "IpPermissions.1.ToPort": "22", "IpPermissions.1.IpRanges.1.CidrIp": "127.0.0.1/32"})
        self.assertEqual(status, 200)
        sg = self.emu.state()["regions"]["us-east-1"]["security_groups"][gid]
        self.assertEqual([(r["fromPort"], r["cidr"]) for r in sg["ingress"]],
                         [(22, "127.0.0.1/32")])

    def test_client_token_filter_hides_a_fresh_launch(self):
        self.import_key()
        self.emu.control("config", {"consistency_delay": 1.0})
        params = self.run_params()
        status, _ = self.emu.query(params)
        self.assertEqual(status, 200)
        query = {"Action": "DescribeInstances", "Filter.1.Name": "client-token",
                 "Filter.1.Value.1": params["ClientToken"]}
        status, root = self.emu.query(query)
        self.assertEqual((status, find_all(root, "instanceId")), (200, []))
        time.sleep(1.1)
        status, root = self.emu.query(query)
        self.assertEqual(len(find_all(root, "instanceId")), 1)

    def test_filter_values_capped_at_200_per_call(self):
        query = {"Action": "DescribeInstances", "Filter.1.Name": "instance-id"}
        query.update({f"Filter.1.Value.{i}": f"i-{i:017x}" for i in range(1, 201)})
        status, root = self.emu.query(query)
        self.assertEqual((status, find_all(root, "instanceId")), (200, []))
        query["Filter.2.Name"] = "instance-state-name"
        query["Filter.2.Value.1"] = "running"
        self.assert_error(self.emu.query(query), "FilterLimitExceeded")

    def test_modify_instance_shutdown_behavior(self):
        self.import_key()
        iid = self.launch()
        self.assertEqual(self.instance(iid)["shutdownBehavior"], "stop")
        status, _ = self.emu.query({"Action": "ModifyInstanceAttribute", "InstanceId": iid,
                                    "InstanceInitiatedShutdownBehavior.Value": "terminate"})
        self.assertEqual(status, 200)
        self.assertEqual(self.instance(iid)["shutdownBehavior"], "terminate")
        status, root = self.emu.query({"Action": "DescribeInstanceAttribute", "InstanceId": iid,
                                       "Attribute": "instanceInitiatedShutdownBehavior"})
        self.assertEqual(find_text(root, "value"), "terminate")
        self.emu.query({"Action": "ModifyInstanceAttribute", "InstanceId": iid,
                        "Attribute": "instanceInitiatedShutdownBehavior", "Value": "stop"})
        self.assertEqual(self.instance(iid)["shutdownBehavior"], "stop")
        self.assert_error(self.emu.query({"Action": "ModifyInstanceAttribute", "InstanceId": iid,
                                          "InstanceInitiatedShutdownBehavior.Value": "halt"}),
                          "InvalidParameterValue")
        spot = self.launch(**{"InstanceMarketOptions.MarketType": "spot"})
        self.assert_error(self.emu.query({"Action": "ModifyInstanceAttribute", "InstanceId": spot,
                                          "InstanceInitiatedShutdownBehavior.Value": "stop"}),
                          "InvalidParameterCombination")


class PersistenceTests(unittest.TestCase):
    def test_restart_and_crash_recovery_keep_state_and_leave_no_stale_sshd(self):
        tmp = Path(tempfile.mkdtemp(prefix="ec2emu-persist-"))
        self.addCleanup(shutil.rmtree, tmp, True)
        port = EmulatorTestBase.ssh_port
        config = base_config(port)
        emu = Emulator(tmp / "state", config).start()
        self.addCleanup(emu.stop)
        helper = EmulatorTestBase("run")
        helper.emu, helper.tmp, helper.keys = emu, tmp, make_keys(tmp)
        helper.import_key()
        ud = cloud_config(helper.keys["host_priv"], helper.keys["host_pub"])
        iid = helper.launch(UserData=base64.b64encode(ud.encode()).decode())
        before = helper.ssh_ready(iid)
        emu.stop()
        self.assertFalse(pid_alive(before["sshd_pid"]), "SIGTERM must end the sshd")
        emu2 = Emulator(tmp / "state", config).start()
        self.addCleanup(emu2.stop)
        helper.emu = emu2
        after = helper.ssh_ready(iid)
        self.assertEqual(after["publicIp"], before["publicIp"])
        self.assertEqual(after["keyName"], "k1")
        # a crashed emulator leaves its sshd behind; the next start must end it by pid
        emu2.proc.kill()
        emu2.proc.wait(timeout=15)
        self.assertTrue(pid_alive(after["sshd_pid"]))
        emu3 = Emulator(tmp / "state", config).start()
        self.addCleanup(emu3.stop)
        helper.emu = emu3
        self.assertFalse(pid_alive(after["sshd_pid"]), "restart must end the stale sshd")
        again = helper.ssh_ready(iid)
        emu3.control("shutdown", {})
        emu3.proc.wait(timeout=15)
        self.assertFalse(pid_alive(again["sshd_pid"]), "shutdown must end the sshd")


if __name__ == "__main__":
    unittest.main()
