"""The DigitalOcean API v2 resources: droplets and their actions, sizes, images, regions, the
account and its SSH keys, cloud firewalls and tags. Each handler takes a Ctx and returns
(status, body-or-None); errors are ApiError with the real ``{"id","message"}`` body. Written from
../shared/spec/digitalocean-api.md; the section numbers below point there."""
from __future__ import annotations

import base64
import binascii
import re
import uuid
from dataclasses import dataclass
from typing import Any, Callable

from . import catalogue
from .state import Store, iso, md5_fingerprint

DROPLET_NAME = re.compile(r"^[a-zA-Z0-9]?[a-z0-9A-Z.\-]*[a-z0-9A-Z]$")
TAG_NAME = re.compile(r"^[a-zA-Z0-9_\-:]+$")
FIREWALL_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9.\-]+$")
USER_DATA_MAX = 64 * 1024
# Action types and the power state they leave the droplet in (facts 2.5).
ACTIONS = {"power_on": "on", "power_off": "off", "shutdown": "off", "reboot": "on",
           "power_cycle": "on"}
TAG_ACTIONS = {"power_cycle", "power_on", "power_off", "shutdown", "enable_ipv6",
               "enable_backups", "disable_backups", "snapshot"}


class ApiError(Exception):
    def __init__(self, status: int, error_id: str, message: str, extra: dict | None = None):
        super().__init__(message)
        self.status, self.error_id, self.message, self.extra = status, error_id, message, extra


def not_found() -> ApiError:
    return ApiError(404, "not_found", "The resource you were accessing could not be found.")


def unprocessable(message: str, extra: dict | None = None) -> ApiError:
    return ApiError(422, "unprocessable_entity", message, extra)


@dataclass
class Ctx:
    store: Store
    now: float
    path: str
    query: dict[str, str]
    body: Any

    def field(self, name: str, default: Any = None) -> Any:
        return self.body.get(name, default) if isinstance(self.body, dict) else default


# -- pagination (facts 1.5) ---------------------------------------------------------------------
def page(ctx: Ctx, key: str, items: list) -> tuple[int, dict]:
    try:
        number = max(1, int(ctx.query.get("page", 1)))
        per_page = min(200, max(1, int(ctx.query.get("per_page", 20))))
    except ValueError:
        raise ApiError(400, "bad_request", "page and per_page must be integers") from None
    last = max(1, (len(items) + per_page - 1) // per_page)
    base = ctx.store.config["public_base"] + ctx.path
    extra = "".join(f"&{k}={v}" for k, v in sorted(ctx.query.items())
                    if k not in ("page", "per_page"))

    def url(n: int) -> str:
        return f"{base}?page={n}&per_page={per_page}{extra}"
    pages: dict[str, str] = {}
    if number > 1:
        pages.update(first=url(1), prev=url(number - 1))
    if number < last:
        pages.update(next=url(number + 1), last=url(last))
    chunk = items[(number - 1) * per_page:number * per_page]
    return 200, {key: chunk, "links": {"pages": pages} if pages else {},
                 "meta": {"total": len(items)}}


# -- catalogue ----------------------------------------------------------------------------------
def size_of(slug: str) -> dict | None:
    return next((s for s in catalogue.SIZES if s["slug"] == slug), None)


def image_of(ref: Any) -> dict | None:
    return next((i for i in catalogue.IMAGES if ref in (i["slug"], i["id"], str(i["id"]))), None)


def list_sizes(ctx: Ctx) -> tuple[int, dict]:
    return page(ctx, "sizes", catalogue.SIZES)


def list_images(ctx: Ctx) -> tuple[int, dict]:
    return page(ctx, "images", catalogue.IMAGES)


def get_image(ctx: Ctx, ref: str) -> tuple[int, dict]:
    image = image_of(int(ref) if ref.isdigit() else ref)
    if image is None:
        raise not_found()
    return 200, {"image": image}


def list_regions(ctx: Ctx) -> tuple[int, dict]:
    return page(ctx, "regions", [catalogue.region_object(r) for r in sorted(catalogue.REGIONS)])


def get_account(ctx: Ctx) -> tuple[int, dict]:
    return 200, {"account": {"droplet_limit": ctx.store.config["droplet_limit"],
                             "floating_ip_limit": 3, "email": "emulator@example.com",
                             "name": "emulator", "uuid": "b6fr89dbf6d9156cace5f3c78dc9851d957381ef",
                             "email_verified": True, "status": "active", "status_message": "",
                             "team": {"uuid": "5df3e3004a17e242b7c20ca6c9fc25b701a47ece",
                                      "name": "emulator"}}}


# -- droplets (facts 2) -------------------------------------------------------------------------
def droplet_view(store: Store, d: dict) -> dict:
    size = size_of(d["size_slug"]) or {}
    v4 = []
    if d.get("public_ip"):
        v4 = [{"ip_address": d["public_ip"], "netmask": "255.255.0.0", "gateway": "127.0.0.1",
               "type": "public"},
              {"ip_address": d["private_ip"], "netmask": "255.255.240.0", "gateway": "nil",
               "type": "private"}]
    out = {"id": d["id"], "name": d["name"], "memory": size.get("memory"),
           "vcpus": size.get("vcpus"), "disk": size.get("disk"), "locked": False,
           "status": d["status"], "created_at": d["created_at"],
           "features": ["droplet_agent", "private_networking"], "backup_ids": [],
           "next_backup_window": None, "snapshot_ids": [], "image": image_of(d["image_id"]),
           "volume_ids": [], "size": size, "size_slug": d["size_slug"],
           "networks": {"v4": v4, "v6": []}, "region": catalogue.region_object(d["region"]),
           "tags": list(d["tags"]), "kernel": None, "vpc_uuid": d["vpc_uuid"]}
    if "gpu_info" in size:
        out["gpu_info"] = size["gpu_info"]
        out["disk_info"] = size["disk_info"] + [{"type": "scratch",
                                                 "size": {"amount": 5120, "unit": "gib"}}]
    return out


def _visible(store: Store, did: str) -> dict:
    d = store.data["droplets"].get(did)
    if d is None:
        raise not_found()
    return d


def _is_gpu(d: dict) -> bool:
    return "gpu_info" in (size_of(d["size_slug"]) or {})


def _tag_exists_or_create(store: Store, name: str) -> None:
    store.data["tags"].setdefault(name, {"name": name})


def _capacity_message(store: Store, region: str, size: str) -> str | None:
    cap = store.config["capacity"]
    for key in (region, "*"):
        per = cap.get(key) or {}
        for slug in (size, "*"):
            if per.get(slug):
                return str(per[slug])
    return None


def create_droplet(ctx: Ctx) -> tuple[int, dict]:
    store = ctx.store
    if not isinstance(ctx.body, dict):
        raise ApiError(400, "bad_request", "error parsing request body")
    if "names" in ctx.body:
        raise unprocessable("the emulator creates one Droplet per request (use name)")
    name, size_slug, image_ref = ctx.field("name"), ctx.field("size"), ctx.field("image")
    for field, value in (("name", name), ("size", size_slug), ("image", image_ref)):
        if not value:
            raise unprocessable(f"{field} is required")
    if not isinstance(name, str) or len(name) > 255 or not DROPLET_NAME.match(name):
        raise unprocessable("Only valid hostname characters are allowed. (a-z, A-Z, 0-9, . and -)")
    size = size_of(size_slug)
    if size is None:
        raise unprocessable("You specified an invalid size for Droplet creation.")
    image = image_of(image_ref)
    if image is None:
        raise unprocessable("You specified an invalid image for Droplet creation.")
    region = ctx.field("region") or next(iter(size["regions"]), "")  # omitted: any region
    if region not in catalogue.REGIONS:
        raise unprocessable("Region is not available")
    if region not in size["regions"] or not size["available"]:
        raise unprocessable("Size is not available in this region.")
    message = _capacity_message(store, region, size_slug)
    if message:
        others = [r for r in size["regions"] if r != region]
        raise unprocessable(message, {"error_attributes": {"available_regions": others}})
    user_data = ctx.field("user_data") or ""
    if not isinstance(user_data, str) or len(user_data.encode()) > USER_DATA_MAX:
        raise unprocessable("user_data must be a string of at most 64 KiB")
    tags = ctx.field("tags") or []
    for tag in tags:
        if not isinstance(tag, str) or len(tag) > 255 or not TAG_NAME.match(tag):
            raise unprocessable(f"invalid tag name: {tag!r}")
    key_ids = []
    for ref in ctx.field("ssh_keys") or []:
        key = _find_key(store, str(ref))
        if key is None:
            raise unprocessable(f"ssh_keys contains an invalid key: {ref}")
        key_ids.append(key["id"])
    live = [d for d in store.data["droplets"].values() if not d.get("deleted_at")]
    if len(live) >= int(store.config["droplet_limit"]):
        raise unprocessable("creating this/these droplet(s) will exceed your droplet limit")
    for tag in tags:
        _tag_exists_or_create(store, tag)   # droplet-create tags are auto-created (facts 7)
    did = store.new_id("droplet")
    droplet = {"id": did, "name": name, "status": "new", "size_slug": size_slug,
               "image_id": image["id"], "region": region, "tags": list(tags),
               "user_data": user_data, "ssh_key_ids": key_ids, "created_at": iso(ctx.now),
               "created_ts": ctx.now, "public_ip": None,
               "private_ip": f"10.{(did >> 16) % 256}.{(did >> 8) % 256}.{did % 256 or 1}",
               "vpc_uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, "vpc/" + region)),
               "power": "off", "power_since": None, "status_next": None, "deleted_at": None,
               "sshd_pid": None}
    store.data["droplets"][str(did)] = droplet
    action = _new_action(store, droplet, "create", ctx.now, float(store.config["delays"]["create"]),
                         "on")
    return 202, {"droplet": droplet_view(store, droplet),
                 "links": {"actions": [{"id": action["id"], "rel": "create",
                                        "href": f"{store.config['public_base']}/v2/actions/"
                                                f"{action['id']}"}]}}


def get_droplet(ctx: Ctx, did: str) -> tuple[int, dict]:
    return 200, {"droplet": droplet_view(ctx.store, _visible(ctx.store, did))}


def list_droplets(ctx: Ctx) -> tuple[int, dict]:
    store = ctx.store
    tag, kind, name = ctx.query.get("tag_name"), ctx.query.get("type"), ctx.query.get("name")
    if tag and (kind or name):
        raise ApiError(400, "bad_request", "tag_name cannot be combined with name or type")
    if kind not in (None, "droplets", "gpus"):
        raise ApiError(400, "bad_request", "type must be droplets or gpus")
    items = sorted(store.data["droplets"].values(), key=lambda d: d["id"])
    if kind == "gpus":
        items = [d for d in items if _is_gpu(d)]
    elif not (tag and store.config["tag_list_includes_gpus"]):
        items = [d for d in items if not _is_gpu(d)]   # GPU droplets are left out (facts 3.4)
    if tag:
        items = [d for d in items if tag in d["tags"]]
    if name:
        items = [d for d in items if d["name"].lower() == name.lower()]
    return page(ctx, "droplets", [droplet_view(store, d) for d in items])


def delete_droplet(ctx: Ctx, did: str) -> tuple[int, None]:
    droplet = _visible(ctx.store, did)
    if droplet.get("deleted_at"):
        raise not_found()
    _destroy(ctx.store, droplet, ctx.now)
    return 204, None


def delete_droplets_by_tag(ctx: Ctx) -> tuple[int, None]:
    tag = ctx.query.get("tag_name")
    if not tag:
        raise ApiError(400, "bad_request", "tag_name is required")
    for droplet in list(ctx.store.data["droplets"].values()):
        if tag in droplet["tags"] and not droplet.get("deleted_at"):
            _destroy(ctx.store, droplet, ctx.now)
    return 204, None


def _destroy(store: Store, droplet: dict, now: float) -> None:
    """Asynchronous: the droplet powers off now, and stays GET-able (status unchanged) for
    delays.delete_linger seconds before it answers 404 (facts 2.4)."""
    droplet["deleted_at"] = now
    droplet["power"] = "off"
    for fw in store.data["firewalls"].values():
        fw["droplet_ids"] = [i for i in fw["droplet_ids"] if i != droplet["id"]]


def _new_action(store: Store, droplet: dict, kind: str, now: float, delay: float,
                power: str | None) -> dict:
    aid = store.new_id("action")
    action = {"id": aid, "status": "in-progress", "type": kind, "started_at": iso(now),
              "completed_at": None, "resource_id": droplet["id"], "resource_type": "droplet",
              "region_slug": droplet["region"], "completes_at": now + delay, "power": power}
    store.data["actions"][str(aid)] = action
    return action


def action_view(action: dict) -> dict:
    out = {k: action[k] for k in ("id", "status", "type", "started_at", "completed_at",
                                  "resource_id", "resource_type", "region_slug")}
    out["region"] = catalogue.region_object(action["region_slug"])
    return out


def droplet_action(ctx: Ctx, did: str) -> tuple[int, dict]:
    store = ctx.store
    droplet = _visible(store, did)
    kind = ctx.field("type")
    if kind not in ACTIONS:
        raise unprocessable(f"the emulator does not know the action type {kind!r}")
    if droplet.get("deleted_at"):
        raise not_found()
    if any(a["status"] == "in-progress" and a["resource_id"] == droplet["id"]
           for a in store.data["actions"].values()):
        raise unprocessable("Droplet already has a pending event.")
    action = _new_action(store, droplet, kind, ctx.now, float(store.config["delays"]["action"]),
                         ACTIONS[kind])
    return 201, {"action": action_view(action)}


def get_action(ctx: Ctx, aid: str, did: str | None = None) -> tuple[int, dict]:
    action = ctx.store.data["actions"].get(aid)
    if action is None or (did is not None and str(action["resource_id"]) != did):
        raise not_found()
    return 200, {"action": action_view(action)}


def list_droplet_actions(ctx: Ctx, did: str) -> tuple[int, dict]:
    _visible(ctx.store, did)
    actions = [action_view(a) for a in ctx.store.data["actions"].values()
               if str(a["resource_id"]) == did]
    return page(ctx, "actions", sorted(actions, key=lambda a: -a["id"]))


def droplet_firewalls(ctx: Ctx, did: str) -> tuple[int, dict]:
    droplet = _visible(ctx.store, did)
    fws = [f for f in ctx.store.data["firewalls"].values() if droplet["id"] in f["droplet_ids"]]
    return page(ctx, "firewalls", [firewall_view(f) for f in fws])


# -- SSH keys (facts 5) -------------------------------------------------------------------------
def _find_key(store: Store, ref: str) -> dict | None:
    return next((k for k in store.data["keys"].values()
                 if ref in (str(k["id"]), k["fingerprint"])), None)


def create_key(ctx: Ctx) -> tuple[int, dict]:
    name, public_key = ctx.field("name"), ctx.field("public_key")
    if not name or not public_key:
        raise unprocessable("name and public_key are required")
    parts = str(public_key).split()
    try:
        blob = base64.b64decode(parts[1], validate=True) if len(parts) >= 2 else b""
    except (binascii.Error, ValueError):
        blob = b""
    if not blob or not parts[0].startswith(("ssh-", "ecdsa-")):
        raise unprocessable("Key invalid type, we support 'ssh-rsa', 'ssh-ed25519', 'ecdsa-sha2-*'")
    fingerprint = md5_fingerprint(blob)
    if any(k["fingerprint"] == fingerprint for k in ctx.store.data["keys"].values()):
        raise unprocessable("SSH Key is already in use on your account")
    kid = ctx.store.new_id("key")
    key = {"id": kid, "fingerprint": fingerprint, "public_key": str(public_key).strip(),
           "name": str(name)}
    ctx.store.data["keys"][str(kid)] = key
    return 201, {"ssh_key": key}


def get_key(ctx: Ctx, ref: str) -> tuple[int, dict]:
    key = _find_key(ctx.store, ref)
    if key is None:
        raise not_found()
    return 200, {"ssh_key": key}


def list_keys(ctx: Ctx) -> tuple[int, dict]:
    return page(ctx, "ssh_keys", sorted(ctx.store.data["keys"].values(), key=lambda k: k["id"]))


def delete_key(ctx: Ctx, ref: str) -> tuple[int, None]:
    key = _find_key(ctx.store, ref)
    if key is None:
        raise not_found()
    del ctx.store.data["keys"][str(key["id"])]
    return 204, None


# -- firewalls (facts 6) ------------------------------------------------------------------------
def firewall_view(fw: dict) -> dict:
    return {k: fw[k] for k in ("id", "name", "status", "created_at", "pending_changes",
                               "droplet_ids", "tags", "inbound_rules", "outbound_rules")}


def _rules(rules: Any, target: str) -> list:
    if rules is None:
        return []
    if not isinstance(rules, list):
        raise ApiError(400, "bad_request", "error parsing request body")
    for rule in rules:
        if (not isinstance(rule, dict) or rule.get("protocol") not in ("tcp", "udp", "icmp")
                or not isinstance(rule.get("ports", "0"), str)
                or not isinstance(rule.get(target), dict)):
            raise unprocessable(f"invalid firewall rule: {rule!r}")
    return rules


def _droplet_ids(store: Store, ids: Any) -> list[int]:
    ids = ids or []
    for did in ids:
        d = store.data["droplets"].get(str(did))
        if not isinstance(did, int) or d is None or d.get("deleted_at"):
            raise unprocessable(f"droplet {did} not found")
    return list(ids)


def _firewall_fields(ctx: Ctx) -> dict:
    """The writable fields of a firewall from a create or a replace (PUT: omitted fields reset)."""
    store = ctx.store
    name = ctx.field("name")
    if not isinstance(name, str) or not FIREWALL_NAME.match(name):
        raise unprocessable("name must match ^[a-zA-Z0-9][a-zA-Z0-9.-]+$")
    inbound = _rules(ctx.field("inbound_rules"), "sources")
    outbound = _rules(ctx.field("outbound_rules"), "destinations")
    if not inbound and not outbound:
        raise unprocessable("at least one inbound or outbound rule is required")
    tags = ctx.field("tags") or []
    for tag in tags:
        if tag not in store.data["tags"]:  # firewall tags are not auto-created (facts 7)
            raise unprocessable(f"tag {tag} does not exist")
    droplet_ids = _droplet_ids(store, ctx.field("droplet_ids"))
    if len(droplet_ids) > 10:
        raise unprocessable("a firewall can be applied to at most 10 droplets")
    return {"name": name, "droplet_ids": droplet_ids, "tags": list(tags),
            "inbound_rules": inbound, "outbound_rules": outbound, "status": "waiting",
            "pending_changes": [{"droplet_id": d, "removing": False, "status": "waiting"}
                                for d in droplet_ids],
            "ready_at": ctx.now + float(store.config["delays"]["firewall"])}


def create_firewall(ctx: Ctx) -> tuple[int, dict]:
    fid = str(uuid.uuid4())
    fw = {"id": fid, "created_at": iso(ctx.now), **_firewall_fields(ctx)}
    ctx.store.data["firewalls"][fid] = fw
    return 202, {"firewall": firewall_view(fw)}


def replace_firewall(ctx: Ctx, fid: str) -> tuple[int, dict]:
    fw = _firewall(ctx.store, fid)
    fw.update(_firewall_fields(ctx))
    return 200, {"firewall": firewall_view(fw)}


def _firewall(store: Store, fid: str) -> dict:
    fw = store.data["firewalls"].get(fid)
    if fw is None:
        raise not_found()
    return fw


def get_firewall(ctx: Ctx, fid: str) -> tuple[int, dict]:
    return 200, {"firewall": firewall_view(_firewall(ctx.store, fid))}


def list_firewalls(ctx: Ctx) -> tuple[int, dict]:
    return page(ctx, "firewalls", [firewall_view(f) for f in ctx.store.data["firewalls"].values()])


def delete_firewall(ctx: Ctx, fid: str) -> tuple[int, None]:
    _firewall(ctx.store, fid)
    del ctx.store.data["firewalls"][fid]
    return 204, None


def firewall_droplets(ctx: Ctx, fid: str, method: str) -> tuple[int, None]:
    fw = _firewall(ctx.store, fid)
    ids = _droplet_ids(ctx.store, ctx.field("droplet_ids"))
    if method == "POST":
        fw["droplet_ids"] = sorted(set(fw["droplet_ids"]) | set(ids))
    else:
        fw["droplet_ids"] = [i for i in fw["droplet_ids"] if i not in ids]
    fw["status"], fw["ready_at"] = "waiting", ctx.now + float(ctx.store.config["delays"]["firewall"])
    return 204, None


# -- tags (facts 7) -----------------------------------------------------------------------------
def tag_view(store: Store, name: str) -> dict:
    count = sum(1 for d in store.data["droplets"].values() if name in d["tags"])
    return {"name": name, "resources": {"count": count, "droplets": {"count": count}}}


def create_tag(ctx: Ctx) -> tuple[int, dict]:
    name = ctx.field("name")
    if not isinstance(name, str) or len(name) > 255 or not TAG_NAME.match(name):
        raise ApiError(400, "bad_request", "invalid tag name",
                       {"error": "tag name is invalid", "messages": None,
                        "root_causes": [f"name {name!r} must match ^[a-zA-Z0-9_-:]+$"]})
    existing = next((t for t in ctx.store.data["tags"] if t.lower() == name.lower()), None)
    _tag_exists_or_create(ctx.store, existing or name)
    return 201, {"tag": tag_view(ctx.store, existing or name)}


def get_tag(ctx: Ctx, name: str) -> tuple[int, dict]:
    if name not in ctx.store.data["tags"]:
        raise not_found()
    return 200, {"tag": tag_view(ctx.store, name)}


def list_tags(ctx: Ctx) -> tuple[int, dict]:
    return page(ctx, "tags", [tag_view(ctx.store, t) for t in sorted(ctx.store.data["tags"])])


def delete_tag(ctx: Ctx, name: str) -> tuple[int, None]:
    if name not in ctx.store.data["tags"]:
        raise not_found()
    del ctx.store.data["tags"][name]
    for droplet in ctx.store.data["droplets"].values():   # deleting a tag only untags
        droplet["tags"] = [t for t in droplet["tags"] if t != name]
    return 204, None


def tag_resources(ctx: Ctx, name: str, method: str) -> tuple[int, None]:
    if name not in ctx.store.data["tags"]:
        raise not_found()   # tagging with an unknown tag is a 404 (facts 7)
    for res in ctx.field("resources") or []:
        droplet = ctx.store.data["droplets"].get(str(res.get("resource_id")))
        if res.get("resource_type") != "droplet" or droplet is None:
            raise unprocessable(f"resource {res!r} not found")
        if method == "POST" and name not in droplet["tags"]:
            droplet["tags"].append(name)
        elif method == "DELETE":
            droplet["tags"] = [t for t in droplet["tags"] if t != name]
    return 204, None


# -- routing ------------------------------------------------------------------------------------
Handler = Callable[..., tuple[int, Any]]
ROUTES: list[tuple[str, re.Pattern, Handler]] = [
    (m, re.compile("^" + p + "$"), h) for m, p, h in [
        ("GET", r"/v2/account", get_account),
        ("GET", r"/v2/sizes", list_sizes),
        ("GET", r"/v2/regions", list_regions),
        ("GET", r"/v2/images", list_images),
        ("GET", r"/v2/images/([^/]+)", get_image),
        ("POST", r"/v2/droplets", create_droplet),
        ("GET", r"/v2/droplets", list_droplets),
        ("DELETE", r"/v2/droplets", delete_droplets_by_tag),
        ("GET", r"/v2/droplets/(\d+)", get_droplet),
        ("DELETE", r"/v2/droplets/(\d+)", delete_droplet),
        ("POST", r"/v2/droplets/(\d+)/actions", droplet_action),
        ("GET", r"/v2/droplets/(\d+)/actions", list_droplet_actions),
        ("GET", r"/v2/droplets/(\d+)/actions/(\d+)",
         lambda ctx, did, aid: get_action(ctx, aid, did)),
        ("GET", r"/v2/droplets/(\d+)/firewalls", droplet_firewalls),
        ("GET", r"/v2/actions/(\d+)", get_action),
        ("POST", r"/v2/account/keys", create_key),
        ("GET", r"/v2/account/keys", list_keys),
        ("GET", r"/v2/account/keys/([^/]+)", get_key),
        ("DELETE", r"/v2/account/keys/([^/]+)", delete_key),
        ("POST", r"/v2/firewalls", create_firewall),
        ("GET", r"/v2/firewalls", list_firewalls),
        ("GET", r"/v2/firewalls/([0-9a-f-]+)", get_firewall),
        ("DELETE", r"/v2/firewalls/([0-9a-f-]+)", delete_firewall),
        ("PUT", r"/v2/firewalls/([0-9a-f-]+)", replace_firewall),
        ("POST", r"/v2/firewalls/([0-9a-f-]+)/droplets",
         lambda ctx, fid: firewall_droplets(ctx, fid, "POST")),
        ("DELETE", r"/v2/firewalls/([0-9a-f-]+)/droplets",
         lambda ctx, fid: firewall_droplets(ctx, fid, "DELETE")),
        ("POST", r"/v2/tags", create_tag),
        ("GET", r"/v2/tags", list_tags),
        ("GET", r"/v2/tags/([^/]+)", get_tag),
        ("DELETE", r"/v2/tags/([^/]+)", delete_tag),
        ("POST", r"/v2/tags/([^/]+)/resources", lambda ctx, n: tag_resources(ctx, n, "POST")),
        ("DELETE", r"/v2/tags/([^/]+)/resources", lambda ctx, n: tag_resources(ctx, n, "DELETE")),
    ]]


def route(method: str, path: str) -> tuple[Handler, tuple[str, ...]] | None:
    for m, pattern, handler in ROUTES:
        match = pattern.match(path)
        if match and m == method:
            return handler, match.groups()
    return None
