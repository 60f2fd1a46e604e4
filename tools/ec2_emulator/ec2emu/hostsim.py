"""The simulated host behind a running instance: cloud-init user data and a real sshd.

Only the parts of cloud-init that matter for reaching the host are honoured: ``ssh_keys``
(host keys, ``<type>_private`` / ``<type>_public``) and ``ssh_authorized_keys``. User data may be
gzip-compressed and/or multi-part MIME; the ``text/cloud-config`` part (or a plain document
starting with ``#cloud-config``) is used. YAML is parsed with a tiny subset parser (mappings,
``|`` block scalars, plain/quoted scalars, ``- item`` lists), enough for cloud-config keys.
"""
from __future__ import annotations

import email
import email.policy
import gzip
import os
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

SSHD = "/usr/sbin/sshd"


@dataclass
class CloudConfig:
    host_keys: dict[str, str] = field(default_factory=dict)      # "ed25519" -> private PEM
    host_public: dict[str, str] = field(default_factory=dict)    # "ed25519" -> public line
    authorized_keys: list[str] = field(default_factory=list)


def _cloud_config_text(raw: bytes) -> str | None:
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except OSError:
            return None
    text = raw.decode("utf-8", errors="replace")
    stripped = text.lstrip()
    if stripped.startswith("#cloud-config"):
        return stripped
    head = stripped[:2048].lower()
    if "content-type:" in head and "multipart" in head or head.startswith("mime-version"):
        msg = email.message_from_bytes(raw, policy=email.policy.compat32)
        for part in msg.walk():
            if part.get_content_type() == "text/cloud-config":
                payload = part.get_payload(decode=True) or b""
                if payload[:2] == b"\x1f\x8b":
                    payload = gzip.decompress(payload)
                return payload.decode("utf-8", errors="replace")
    return None


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _parse_block(lines: list[str], start: int, base_indent: int) -> tuple[str, int]:
    """A ``|`` block scalar: lines more indented than ``base_indent``."""
    body: list[str] = []
    i = start
    block_indent = None
    while i < len(lines):
        line = lines[i]
        if line.strip() == "":
            body.append("")
            i += 1
            continue
        ind = _indent(line)
        if ind <= base_indent:
            break
        if block_indent is None:
            block_indent = ind
        body.append(line[block_indent:])
        i += 1
    while body and body[-1] == "":
        body.pop()
    return "\n".join(body) + "\n", i


def _parse_section(lines: list[str], start: int, base_indent: int) -> tuple[dict | list, int]:
    """Mapping or list children more indented than ``base_indent`` (one level deep values)."""
    result: dict | list | None = None
    i = start
    while i < len(lines):
        line = lines[i]
        if line.strip() == "" or line.lstrip().startswith("#"):
            i += 1
            continue
        ind = _indent(line)
        if ind <= base_indent:
            break
        content = line.strip()
        if content.startswith("- "):
            result = result if isinstance(result, list) else []
            result.append(_unquote(content[2:]))
            i += 1
            continue
        key, _, rest = content.partition(":")
        result = result if isinstance(result, dict) else {}
        rest = rest.strip()
        if rest in ("|", "|-", "|+", ">"):
            value, i = _parse_block(lines, i + 1, ind)
            result[key.strip()] = value
        else:
            result[key.strip()] = _unquote(rest)
            i += 1
    return (result if result is not None else {}), i


def parse_cloud_config(user_data: bytes) -> CloudConfig:
    out = CloudConfig()
    text = _cloud_config_text(user_data) if user_data else None
    if text is None:
        return out
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if _indent(line) == 0 and line.startswith(("ssh_keys:", "ssh_authorized_keys:")):
            key = line.split(":", 1)[0]
            section, i = _parse_section(lines, i + 1, 0)
            if key == "ssh_keys" and isinstance(section, dict):
                for name, value in section.items():
                    if name.endswith("_private"):
                        out.host_keys[name[:-len("_private")]] = value
                    elif name.endswith("_public"):
                        out.host_public[name[:-len("_public")]] = value.strip()
            elif key == "ssh_authorized_keys" and isinstance(section, list):
                out.authorized_keys.extend(section)
            continue
        i += 1
    return out


# -- processes ------------------------------------------------------------
def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read().decode(errors="replace")
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    return children


def _marked_pids(marker: str) -> list[int]:
    """Processes whose environment carries ``EC2EMU_MARK=<marker>`` (sessions on the host)."""
    needle = f"EC2EMU_MARK={marker}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as fh:
                env = fh.read()
        except OSError:
            continue
        if needle in env.split(b"\0"):
            found.append(int(entry))
    return found


def host_processes(root_pid: int | None, marker: str) -> list[int]:
    """The sshd listener, its descendants and any process started from a session."""
    pids: set[int] = set(_marked_pids(marker))
    if root_pid is not None and pid_alive(root_pid):
        children = _children_map()
        seen: set[int] = set()
        stack = [root_pid]
        while stack:
            pid = stack.pop()
            if pid in seen:
                continue
            seen.add(pid)
            stack.extend(children.get(pid, []))
        pids |= seen
    pids.discard(os.getpid())
    return sorted(pids)


def kill_pids(pids: list[int], grace_s: float = 2.0) -> None:
    """SIGTERM each pid, then SIGKILL whatever is still there after ``grace_s``."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass
    deadline = time.monotonic() + grace_s
    remaining = list(pids)
    while remaining and time.monotonic() < deadline:
        _reap()
        remaining = [p for p in remaining if pid_alive(p) and not _is_zombie(p)]
        if remaining:
            time.sleep(0.02)
    for pid in remaining:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    _reap()


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[0] == b"Z"
    except (OSError, IndexError):
        return False


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def sshd_cmdline_matches(pid: int, config_path: Path) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            # sshd rewrites its argv into one title string, so match a substring
            return str(config_path).encode() in fh.read()
    except OSError:
        return False


BOOT_ID = "proc/sys/kernel/random/boot_id"


def prepare_root(inst_dir: Path, simulated: str | None, boot: str) -> Path:
    """The instance's root for host files (sessions get it as GM_SYSROOT): a simulated host's
    root when ``instance_env`` names one, else ``<inst_dir>/root``. \a boot names the boot the
    host is starting (it changes with every reboot and start, not when only its sshd is started
    again): a new boot gets a new boot id, as a kernel does. A simulated host's is a fresh UUID;
    in the emulator's own root it begins with the test machine's boot id, since all instances
    share its kernel and the test binary refuses to provision that machine by its boot id."""
    root = Path(simulated) if simulated else inst_dir / "root"
    inst_dir.mkdir(parents=True, exist_ok=True)
    for sub in ("etc/ssh", "run", "proc/sys/kernel/random"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    boot_id = root / BOOT_ID
    marker = inst_dir / "boot"
    if boot_id.is_symlink() or not boot_id.exists() or not marker.exists() \
            or marker.read_text() != boot:
        fresh = str(uuid.uuid4())
        if not simulated:
            with open("/" + BOOT_ID, encoding="ascii") as fh:
                fresh = f"{fh.read().strip()}.{fresh[:8]}"
        boot_id.unlink(missing_ok=True)
        boot_id.write_text(fresh + "\n")
        marker.write_text(boot)
    return root


def write_host_files(inst_dir: Path, root: Path, cloud: CloudConfig,
                     authorized: list[str]) -> list[Path]:
    """Host keys in ``root/etc/ssh`` and authorized_keys. Like cloud-init's ssh module, the keys
    from user data (or generated ones, when it has none) are written on the instance's first boot
    only; later boots keep whatever the host has there (a host may replace its keys)."""
    inst_dir.mkdir(parents=True, exist_ok=True)
    ssh_dir = root / "etc/ssh"
    done = inst_dir / "cloud-init-ssh-done"
    if not done.exists():
        for kind, pem in sorted(cloud.host_keys.items()):
            path = ssh_dir / f"ssh_host_{kind}_key"
            _write_private(path, pem if pem.endswith("\n") else pem + "\n")
            pub = cloud.host_public.get(kind)
            if pub:
                (ssh_dir / f"ssh_host_{kind}_key.pub").write_text(pub + "\n")
        path = ssh_dir / "ssh_host_ed25519_key"
        if not cloud.host_keys and not path.exists():
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "emulated-host",
                            "-f", str(path)], check=True, stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
        done.write_text("")
    key_paths = sorted(p for p in ssh_dir.glob("ssh_host_*_key"))
    (inst_dir / "authorized_keys").write_text("".join(k.strip() + "\n" for k in authorized))
    return key_paths


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(path, 0o600)


def write_sshd_config(inst_dir: Path, root: Path, address: str, port: int,
                      host_keys: list[Path], env: dict[str, str], extra: list[str]) -> Path:
    lines = [
        f"ListenAddress {address}:{port}",
        "AddressFamily inet",
        *[f"HostKey {p}" for p in host_keys],
        f"AuthorizedKeysFile {inst_dir / 'authorized_keys'}",
        f"PidFile {root / 'run/sshd.pid'}",
        "UsePAM no",
        "StrictModes no",
        "PermitRootLogin yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PubkeyAuthentication yes",
        "AllowTcpForwarding yes",
        "X11Forwarding no",
        "PrintMotd no",
        "MaxStartups 64:30:256",
        "MaxSessions 64",
        "LogLevel INFO",
        "Subsystem sftp internal-sftp",
        "SetEnv " + " ".join(f'"{k}={v}"' for k, v in env.items()),
        *extra,
    ]
    path = inst_dir / "sshd_config"
    path.write_text("\n".join(lines) + "\n")
    return path


def start_sshd(config_path: Path, log_path: Path) -> subprocess.Popen:
    Path("/run/sshd").mkdir(parents=True, exist_ok=True)
    log = open(log_path, "ab")
    try:
        return subprocess.Popen([SSHD, "-D", "-e", "-f", str(config_path)], stdin=subprocess.DEVNULL,
                                stdout=log, stderr=log, start_new_session=True, close_fds=True)
    finally:
        log.close()
