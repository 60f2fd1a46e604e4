"""EC2 Query API actions (API version 2016-11-15).

Instance, volume and tag actions live in ``instances.py``, which registers into the same
table. Each handler takes a ``Ctx`` and the request ``Params`` and returns the response body as a
dict (rendered by ``wire.to_xml``), or raises ``ApiError``. Handlers run under ``Store.lock``.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import re
from dataclasses import dataclass
from typing import Callable

from . import catalogue
from .state import Store, iso, new_id
from .wire import (ApiError, Params, any_match, check_known, glob_match, parse_filters,
                   parse_tags, tag_set)


@dataclass
class Ctx:
    store: Store
    region_name: str
    now: float

    @property
    def region(self) -> dict:
        return self.store.region(self.region_name)

    @property
    def config(self) -> dict:
        return self.store.config

    @property
    def account(self) -> str:
        return self.store.config["account_id"]

    def hidden(self, resource: dict) -> bool:
        """Eventual consistency: a fresh resource is invisible for ``consistency_delay`` s."""
        delay = float(self.config.get("consistency_delay") or 0)
        return delay > 0 and self.now - float(resource.get("created_at") or 0) < delay


Handler = Callable[[Ctx, Params], dict]
HANDLERS: dict[str, Handler] = {}
MUTATING: set[str] = set()


def action(name: str, *, mutating: bool = False):
    def register(fn: Handler) -> Handler:
        HANDLERS[name] = fn
        if mutating:
            MUTATING.add(name)
        return fn
    return register


def dry_run(p: Params) -> None:
    if p.get_bool("DryRun", False):
        raise ApiError("DryRunOperation", "Request would have succeeded, but DryRun flag is set.")


def paginate(items: list, p: Params, default_max: int, lo: int, hi: int) -> tuple[list, str | None]:
    max_results = p.get_int("MaxResults", None, lo, hi)
    token = p.get("NextToken")
    start = 0
    if token:
        try:
            start = int(base64.b64decode(token, validate=True).decode())
        except (binascii.Error, ValueError, UnicodeDecodeError):
            raise ApiError("InvalidNextToken", f"The specified token {token} is invalid") from None
    size = max_results or (default_max if max_results is None and default_max else len(items))
    page = items[start:start + size] if size else items[start:]
    nxt = start + len(page)
    return page, (base64.b64encode(str(nxt).encode()).decode() if nxt < len(items) else None)


def _filter_ok(filters: list[tuple[str, list[str]]],
               values_of: Callable[[str], list[str] | None]) -> bool:
    for name, patterns in filters:
        values = values_of(name)
        if values is None:
            raise ApiError("InvalidParameterValue", f"The filter '{name}' is invalid")
        if not any_match(patterns, values):
            return False
    return True


def _tag_values(tags: dict[str, str], name: str) -> list[str] | None:
    if name.startswith("tag:"):
        key = name[4:]
        return [tags[key]] if key in tags else []
    if name == "tag-key":
        return list(tags)
    if name == "tag-value":
        return list(tags.values())
    return None


def _tag_specs(p: Params, allowed: set[str]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for spec in p.get_structs("TagSpecification"):
        rtype = spec.get("ResourceType")
        if rtype not in allowed:
            raise ApiError("InvalidParameterValue",
                           f"'{rtype}' is not a valid taggable resource type for this operation.")
        out.setdefault(rtype, {}).update(dict(parse_tags(spec)))
    return out


# -- regions, zones, catalogue ---------------------------------------------------
@action("DescribeRegions")
def describe_regions(ctx: Ctx, p: Params) -> dict:
    check_known(p, {"RegionName", "Filter", "AllRegions"})
    names = p.get_list("RegionName")
    filters = parse_filters(p)
    items = []
    for region in ctx.config["regions"]:
        if names and region not in names:
            continue
        def values(n: str, r: str = region) -> list[str] | None:
            return {"region-name": [r], "endpoint": [f"ec2.{r}.amazonaws.com"],
                    "opt-in-status": ["opt-in-not-required"]}.get(n)
        if _filter_ok(filters, values):
            items.append({"regionName": region, "regionEndpoint": f"ec2.{region}.amazonaws.com",
                          "optInStatus": "opt-in-not-required"})
    unknown = [n for n in names if n not in ctx.config["regions"]]
    if unknown:
        raise ApiError("InvalidParameterValue", f"Invalid region: {unknown[0]}")
    return {"regionInfo": items}


@action("DescribeAvailabilityZones")
def describe_availability_zones(ctx: Ctx, p: Params) -> dict:
    check_known(p, {"ZoneName", "ZoneId", "Filter", "AllAvailabilityZones"})
    names, ids = p.get_list("ZoneName"), p.get_list("ZoneId")
    zones = ctx.store.zones(ctx.region_name)
    for n in names:
        if n not in zones:
            raise ApiError("InvalidParameterValue", f"The zone '{n}' does not exist.")
    filters = parse_filters(p)
    items = []
    for zone in zones:
        zid = catalogue.zone_id(ctx.region_name, zone)
        if (names and zone not in names) or (ids and zid not in ids):
            continue
        fields = {"zone-name": [zone], "zone-id": [zid], "state": ["available"],
                  "region-name": [ctx.region_name], "zone-type": ["availability-zone"],
                  "opt-in-status": ["opt-in-not-required"], "group-name": [ctx.region_name]}
        if _filter_ok(filters, fields.get):
            items.append({"zoneName": zone, "zoneId": zid, "zoneState": "available",
                          "regionName": ctx.region_name, "zoneType": "availability-zone",
                          "groupName": ctx.region_name, "networkBorderGroup": ctx.region_name,
                          "optInStatus": "opt-in-not-required", "messageSet": []})
    return {"availabilityZoneInfo": items}


def offered(ctx: Ctx, zone: str, itype: str) -> bool:
    globs = ctx.config["unsupported"].get(zone, [])
    return not any(glob_match(g, itype) for g in globs)


@action("DescribeInstanceTypes")
def describe_instance_types(ctx: Ctx, p: Params) -> dict:
    check_known(p, {"InstanceType", "Filter", "MaxResults", "NextToken"})
    wanted = p.get_list("InstanceType")
    for name in wanted:
        if name not in catalogue.INSTANCE_TYPES:
            raise ApiError("InvalidInstanceType",
                           f"The following supplied instance types do not exist: [{name}]")
    if wanted and p.has("MaxResults"):
        raise ApiError("InvalidParameterCombination",
                       "The parameter instanceTypes cannot be used with the parameter maxResults")
    filters = parse_filters(p)
    items = []
    for t in catalogue.INSTANCE_TYPES.values():
        if wanted and t.name not in wanted:
            continue
        fields = {"instance-type": [t.name],
                  "processor-info.supported-architecture": [t.arch],
                  "current-generation": [str(not t.name.startswith("p3.")).lower()],
                  "vcpu-info.default-vcpus": [str(t.vcpus)],
                  "memory-info.size-in-mib": [str(t.memory_mib)],
                  "gpu-info.count": [str(t.gpu_count)] if t.gpu else [],
                  "gpu-info.name": [t.gpu.name] if t.gpu else [],
                  "gpu-info.manufacturer": [t.gpu.manufacturer] if t.gpu else [],
                  "bare-metal": [str(t.name.endswith(".metal")).lower()],
                  "supported-usage-class": ["on-demand", "spot"]}
        if _filter_ok(filters, fields.get):
            items.append(t.describe())
    page, nxt = paginate(items, p, 100, 5, 100)
    return {"instanceTypeSet": page, "nextToken": nxt}


@action("DescribeInstanceTypeOfferings")
def describe_instance_type_offerings(ctx: Ctx, p: Params) -> dict:
    check_known(p, {"LocationType", "Filter", "MaxResults", "NextToken"})
    ltype = p.get_enum("LocationType", ["region", "availability-zone", "availability-zone-id"],
                       "region")
    filters = parse_filters(p)
    items = []
    zones = ctx.store.zones(ctx.region_name)
    for t in catalogue.INSTANCE_TYPES:
        if ltype == "region":
            locations = [ctx.region_name] if any(offered(ctx, z, t) for z in zones) else []
        else:
            locations = [z if ltype == "availability-zone" else catalogue.zone_id(ctx.region_name, z)
                         for z in zones if offered(ctx, z, t)]
        for loc in locations:
            if _filter_ok(filters, {"instance-type": [t], "location": [loc]}.get):
                items.append({"instanceType": t, "locationType": ltype, "location": loc})
    page, nxt = paginate(items, p, 1000, 5, 1000)
    return {"instanceTypeOfferingSet": page, "nextToken": nxt}


_AMI_RE = re.compile(r"^ami-([0-9a-f]{8}|[0-9a-f]{17})$")


def _image_item(region: str, img: catalogue.Image) -> dict:
    return {
        "imageId": img.image_id(region),
        "imageLocation": f"{img.owner}/{img.name}",
        "imageState": "available",
        "imageOwnerId": img.owner,
        "creationDate": img.creation,
        "isPublic": True,
        "architecture": img.arch,
        "imageType": "machine",
        "platformDetails": "Linux/UNIX",
        "usageOperation": "RunInstances",
        "imageOwnerAlias": img.alias,
        "name": img.name,
        "description": img.description,
        "rootDeviceType": "ebs",
        "rootDeviceName": img.root_device,
        "blockDeviceMapping": [{"deviceName": img.root_device, "ebs": {
            "snapshotId": img.snapshot_id(region), "volumeSize": img.root_size_gib,
            "deleteOnTermination": True, "volumeType": img.volume_type, "encrypted": False}}],
        "virtualizationType": "hvm",
        "hypervisor": "xen",
        "enaSupport": True,
        "sriovNetSupport": "simple",
        "bootMode": "uefi-preferred",
    }


@action("DescribeImages")
def describe_images(ctx: Ctx, p: Params) -> dict:
    check_known(p, {"ImageId", "Owner", "ExecutableBy", "Filter", "IncludeDeprecated",
                    "IncludeDisabled", "MaxResults", "NextToken"})
    ids = p.get_list("ImageId")
    for image_id in ids:
        if not _AMI_RE.match(image_id):
            raise ApiError("InvalidAMIID.Malformed", f"Invalid id: \"{image_id}\"")
    owners = p.get_list("Owner")
    filters = parse_filters(p)
    items = []
    for img in catalogue.IMAGES:
        image_id = img.image_id(ctx.region_name)
        if ids and image_id not in ids:
            continue
        if owners and not any(o in (img.owner, img.alias) for o in owners):
            continue
        fields = {"name": [img.name], "architecture": [img.arch], "image-id": [image_id],
                  "owner-id": [img.owner], "owner-alias": [img.alias] if img.alias else [],
                  "state": ["available"], "root-device-name": [img.root_device],
                  "root-device-type": ["ebs"], "virtualization-type": ["hvm"],
                  "image-type": ["machine"], "is-public": ["true"],
                  "description": [img.description]}
        if _filter_ok(filters, fields.get):
            items.append(_image_item(ctx.region_name, img))
    missing = [i for i in ids if catalogue.image_by_id(ctx.region_name, i) is None]
    if missing:
        raise ApiError("InvalidAMIID.NotFound",
                       f"The image id '[{', '.join(missing)}]' does not exist")
    page, nxt = paginate(items, p, 0, 5, 1000)
    return {"imagesSet": page, "nextToken": nxt}


# -- key pairs ---------------------------------------------------------------------------
def _parse_public_key(material_b64: str) -> tuple[str, bytes, str]:
    """Returns (key type, wire blob, the OpenSSH line)."""
    bad = ApiError("InvalidKeyPair.Format", "Key is not in valid OpenSSH public key format")
    try:
        line = base64.b64decode(material_b64, validate=True).decode("ascii").strip()
    except (binascii.Error, UnicodeDecodeError):
        raise bad from None
    parts = line.split()
    if len(parts) < 2 or parts[0] not in ("ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256",
                                          "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521"):
        raise bad
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except binascii.Error:
        raise bad from None
    if len(blob) < 4:
        raise bad
    n = int.from_bytes(blob[:4], "big")
    if blob[4:4 + n].decode("ascii", "replace") != parts[0]:
        raise bad
    return parts[0], blob, line


def _fingerprint(ktype: str, blob: bytes) -> str:
    if ktype == "ssh-rsa":
        digest = hashlib.md5(blob).hexdigest()
        return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))
    return base64.b64encode(hashlib.sha256(blob).digest()).decode()


def _key_item(kp: dict, include_public: bool) -> dict:
    return {"keyPairId": kp["keyPairId"], "keyName": kp["keyName"],
            "keyFingerprint": kp["keyFingerprint"], "keyType": kp["keyType"],
            "tagSet": tag_set(kp["tags"]), "createTime": iso(kp["created_at"]),
            "publicKey": kp["publicKey"] if include_public else None}


@action("ImportKeyPair", mutating=True)
def import_key_pair(ctx: Ctx, p: Params) -> dict:
    check_known(p, {"KeyName", "PublicKeyMaterial", "TagSpecification"})
    name = p.require("KeyName")
    if len(name) > 255:
        raise ApiError("InvalidParameterValue", "Key name exceeds 255 characters")
    ktype, blob, line = _parse_public_key(p.require("PublicKeyMaterial"))
    tags = _tag_specs(p, {"key-pair"}).get("key-pair", {})
    dry_run(p)
    if name in ctx.region["key_pairs"]:
        raise ApiError("InvalidKeyPair.Duplicate", f"The keypair '{name}' already exists.")
    kp = {"keyName": name, "keyPairId": new_id("key"), "keyType":
          "ed25519" if ktype == "ssh-ed25519" else ("rsa" if ktype == "ssh-rsa" else "ecdsa"),
          "keyFingerprint": _fingerprint(ktype, blob), "publicKey": line, "tags": tags,
          "created_at": ctx.now}
    ctx.region["key_pairs"][name] = kp
    return {"keyFingerprint": kp["keyFingerprint"], "keyName": name,
            "keyPairId": kp["keyPairId"], "tagSet": tag_set(tags)}


@action("DeleteKeyPair", mutating=True)
def delete_key_pair(ctx: Ctx, p: Params) -> dict:
    check_known(p, {"KeyName", "KeyPairId"})
    name, kid = p.get("KeyName"), p.get("KeyPairId")
    if not name and not kid:
        raise ApiError("MissingParameter", "The request must contain the parameter KeyName "
                       "or KeyPairId")
    dry_run(p)
    for key, kp in list(ctx.region["key_pairs"].items()):
        if kp["keyName"] == name or kp["keyPairId"] == kid:
            del ctx.region["key_pairs"][key]
            return {"return": True, "keyPairId": kp["keyPairId"]}
    return {"return": True}


@action("DescribeKeyPairs")
def describe_key_pairs(ctx: Ctx, p: Params) -> dict:
    check_known(p, {"KeyName", "KeyPairId", "Filter", "IncludePublicKey"})
    names, ids = p.get_list("KeyName"), p.get_list("KeyPairId")
    include = bool(p.get_bool("IncludePublicKey", False))
    filters = parse_filters(p)
    pairs = ctx.region["key_pairs"]
    for n in names:
        if n not in pairs:
            raise ApiError("InvalidKeyPair.NotFound", f"The key pair '{n}' does not exist")
    known_ids = {kp["keyPairId"] for kp in pairs.values()}
    for i in ids:
        if i not in known_ids:
            raise ApiError("InvalidKeyPair.NotFound", f"The key pair '{i}' does not exist")
    items = []
    for kp in pairs.values():
        if (names and kp["keyName"] not in names) or (ids and kp["keyPairId"] not in ids):
            continue
        def values(n: str, kp: dict = kp) -> list[str] | None:
            fixed = {"key-name": [kp["keyName"]], "key-pair-id": [kp["keyPairId"]],
                     "fingerprint": [kp["keyFingerprint"]], "key-type": [kp["keyType"]]}
            return fixed.get(n, _tag_values(kp["tags"], n))
        if _filter_ok(filters, values):
            items.append(_key_item(kp, include))
    return {"keySet": items}


# -- VPC, subnets, security groups ---------------------------------------------------------
@action("DescribeVpcs")
def describe_vpcs(ctx: Ctx, p: Params) -> dict:
    check_known(p, {"VpcId", "Filter", "MaxResults", "NextToken"})
    ids = p.get_list("VpcId")
    filters = parse_filters(p)
    vpcs = ctx.region["vpcs"]
    for i in ids:
        if i not in vpcs:
            raise ApiError("InvalidVpcID.NotFound", f"The vpc ID '{i}' does not exist")
    items = []
    for vpc in vpcs.values():
        if ids and vpc["vpcId"] not in ids:
            continue
        def values(n: str, v: dict = vpc) -> list[str] | None:
            fixed = {"vpc-id": [v["vpcId"]], "is-default": [str(v["isDefault"]).lower()],
                     "cidr": [v["cidrBlock"]], "state": ["available"],
                     "owner-id": [ctx.account]}
            return fixed.get(n, _tag_values(v["tags"], n))
        if _filter_ok(filters, values):
            items.append({"vpcId": vpc["vpcId"], "ownerId": ctx.account, "state": "available",
                          "cidrBlock": vpc["cidrBlock"], "isDefault": vpc["isDefault"],
                          "instanceTenancy": "default", "dhcpOptionsId": "dopt-0emulator",
                          "tagSet": tag_set(vpc["tags"])})
    return {"vpcSet": items}


@action("DescribeSubnets")
def describe_subnets(ctx: Ctx, p: Params) -> dict:
    check_known(p, {"SubnetId", "Filter", "MaxResults", "NextToken"})
    ids = p.get_list("SubnetId")
    filters = parse_filters(p)
    subnets = ctx.region["subnets"]
    for i in ids:
        if i not in subnets:
            raise ApiError("InvalidSubnetID.NotFound", f"The subnet ID '{i}' does not exist")
    items = []
    for s in subnets.values():
        if ids and s["subnetId"] not in ids:
            continue
        zid = catalogue.zone_id(ctx.region_name, s["availabilityZone"])
        def values(n: str, s: dict = s, zid: str = zid) -> list[str] | None:
            fixed = {"subnet-id": [s["subnetId"]], "vpc-id": [s["vpcId"]],
                     "availability-zone": [s["availabilityZone"]], "availability-zone-id": [zid],
                     "default-for-az": [str(s["defaultForAz"]).lower()],
                     "defaultForAz": [str(s["defaultForAz"]).lower()],
                     "cidr-block": [s["cidrBlock"]], "state": ["available"],
                     "map-public-ip-on-launch": [str(s["mapPublicIpOnLaunch"]).lower()]}
            return fixed.get(n, _tag_values(s["tags"], n))
        if _filter_ok(filters, values):
            items.append({"subnetId": s["subnetId"], "subnetArn":
                          f"arn:aws:ec2:{ctx.region_name}:{ctx.account}:subnet/{s['subnetId']}",
                          "state": "available", "vpcId": s["vpcId"], "cidrBlock": s["cidrBlock"],
                          "availableIpAddressCount": 4091, "availabilityZone": s["availabilityZone"],
                          "availabilityZoneId": zid, "defaultForAz": s["defaultForAz"],
                          "mapPublicIpOnLaunch": s["mapPublicIpOnLaunch"], "ownerId": ctx.account,
                          "tagSet": tag_set(s["tags"])})
    return {"subnetSet": items}


def _default_vpc(ctx: Ctx) -> str:
    for vpc in ctx.region["vpcs"].values():
        if vpc["isDefault"]:
            return vpc["vpcId"]
    raise ApiError("VPCIdNotSpecified", "No default VPC for this user")


def _find_group(ctx: Ctx, group_id: str | None, group_name: str | None,
                vpc_id: str | None = None) -> dict:
    groups = ctx.region["security_groups"]
    if group_id:
        sg = groups.get(group_id)
        if sg is None or ctx.hidden(sg):
            raise ApiError("InvalidGroup.NotFound",
                           f"The security group '{group_id}' does not exist")
        return sg
    if group_name:
        vpc_id = vpc_id or _default_vpc(ctx)
        for sg in groups.values():
            if sg["groupName"] == group_name and sg["vpcId"] == vpc_id and not ctx.hidden(sg):
                return sg
        raise ApiError("InvalidGroup.NotFound",
                       f"The security group '{group_name}' does not exist in default VPC "
                       f"'{vpc_id}'")
    raise ApiError("MissingParameter", "The request must contain the parameter groupId or "
                   "groupName")


@action("CreateSecurityGroup", mutating=True)
def create_security_group(ctx: Ctx, p: Params) -> dict:
    check_known(p, {"GroupName", "GroupDescription", "VpcId", "TagSpecification"})
    name = p.require("GroupName")
    desc = p.require("GroupDescription")
    if len(name) > 255 or len(desc) > 255:
        raise ApiError("InvalidParameterValue", "Group name and description are limited to "
                       "255 characters")
    if name.lower().startswith("sg-"):
        raise ApiError("InvalidParameterValue", "Group names may not be in the format sg-*")
    vpc_id = p.get("VpcId") or _default_vpc(ctx)
    if vpc_id not in ctx.region["vpcs"]:
        raise ApiError("InvalidVpcID.NotFound", f"The vpc ID '{vpc_id}' does not exist")
    tags = _tag_specs(p, {"security-group"}).get("security-group", {})
    dry_run(p)
    for sg in ctx.region["security_groups"].values():
        if sg["groupName"] == name and sg["vpcId"] == vpc_id:
            raise ApiError("InvalidGroup.Duplicate",
                           f"The security group '{name}' already exists for VPC '{vpc_id}'")
    gid = new_id("sg")
    ctx.region["security_groups"][gid] = {
        "groupId": gid, "groupName": name, "vpcId": vpc_id, "description": desc,
        "tags": tags, "ingress": [], "created_at": ctx.now, "default": False}
    return {"return": True, "groupId": gid, "tagSet": tag_set(tags) if tags else None}


def _group_in_use(ctx: Ctx, gid: str) -> bool:
    return any(gid in inst["groups"] and inst["state"] != "terminated"
               for inst in ctx.region["instances"].values())


@action("DeleteSecurityGroup", mutating=True)
def delete_security_group(ctx: Ctx, p: Params) -> dict:
    check_known(p, {"GroupId", "GroupName"})
    sg = _find_group(ctx, p.get("GroupId"), p.get("GroupName"))
    dry_run(p)
    if sg.get("default"):
        raise ApiError("CannotDelete", "the specified group: \"{}\" name: \"default\" cannot "
                       "be deleted by a user".format(sg["groupId"]))
    if _group_in_use(ctx, sg["groupId"]):
        raise ApiError("DependencyViolation",
                       f"resource {sg['groupId']} has a dependent object")
    del ctx.region["security_groups"][sg["groupId"]]
    return {"return": True, "groupId": sg["groupId"]}


_PROTOCOLS = {"tcp": "tcp", "6": "tcp", "udp": "udp", "17": "udp", "icmp": "icmp", "1": "icmp",
              "-1": "-1", "all": "-1"}


def _parse_permissions(p: Params) -> list[dict]:
    """Flat rules from ``IpPermissions.N`` (or the legacy top-level form)."""
    perms = p.get_structs("IpPermissions")
    if not perms and p.has("IpProtocol"):
        legacy = {"IpProtocol": p.get("IpProtocol"), "FromPort": p.get("FromPort"),
                  "ToPort": p.get("ToPort"), "IpRanges.1.CidrIp": p.get("CidrIp")}
        perms = [Params({k: v for k, v in legacy.items() if v is not None})]
    if not perms:
        raise ApiError("MissingParameter", "No permissions were specified (IpPermissions)")
    rules = []
    for perm in perms:
        raw_proto = (perm.get("IpProtocol") or "").lower()
        proto = _PROTOCOLS.get(raw_proto)
        if proto is None:
            raise ApiError("InvalidParameterValue",
                           f"Invalid value '{raw_proto}' for IP protocol. Unknown protocol.")
        lo = perm.get_int("FromPort", None, -1, 65535)
        hi = perm.get_int("ToPort", None, -1, 65535)
        if proto in ("tcp", "udp"):
            if lo is None or hi is None:
                raise ApiError("InvalidParameterValue", "Invalid value 'Must specify both from "
                               "and to ports with TCP/UDP.' for portRange")
            if lo > hi or lo < 0:
                raise ApiError("InvalidParameterValue",
                               f"Invalid value 'from port {lo} > to port {hi}' for portRange")
        if proto == "-1":
            lo = hi = None
        peers = []
        for r in perm.get_structs("IpRanges"):
            cidr = r.require("CidrIp")
            try:
                net = ipaddress.IPv4Network(cidr, strict=True)
            except ValueError:
                raise ApiError("InvalidParameterValue", f"CIDR block {cidr} is malformed") from None
            peers.append({"cidr": str(net), "description": r.get("Description")})
        for r in perm.get_structs("Ipv6Ranges"):
            cidr = r.require("CidrIpv6")
            try:
                net6 = ipaddress.IPv6Network(cidr, strict=True)
            except ValueError:
                raise ApiError("InvalidParameterValue", f"CIDR block {cidr} is malformed") from None
            peers.append({"cidrv6": str(net6), "description": r.get("Description")})
        for g in perm.get_structs("Groups"):
            peers.append({"groupId": g.require("GroupId"), "description": g.get("Description")})
        if not peers:
            raise ApiError("InvalidParameterValue", "No source (IpRanges, Ipv6Ranges or Groups) "
                           "specified for the permission")
        for peer in peers:
            rules.append({"protocol": proto, "fromPort": lo, "toPort": hi, **peer})
    return rules


def _rule_key(rule: dict) -> tuple:
    return (rule["protocol"], rule["fromPort"], rule["toPort"], rule.get("cidr"),
            rule.get("cidrv6"), rule.get("groupId"))


@action("AuthorizeSecurityGroupIngress", mutating=True)
def authorize_ingress(ctx: Ctx, p: Params) -> dict:
    check_known(p, {"GroupId", "GroupName", "IpPermissions", "IpProtocol", "FromPort", "ToPort",
                    "CidrIp", "TagSpecification", "SourceSecurityGroupName",
                    "SourceSecurityGroupOwnerId"})
    sg = _find_group(ctx, p.get("GroupId"), p.get("GroupName"))
    rules = _parse_permissions(p)
    for rule in rules:
        if rule.get("groupId"):  # a group as the source (the cluster's self-rule): must exist
            _find_group(ctx, rule["groupId"], None)
    dry_run(p)
    existing = {_rule_key(r) for r in sg["ingress"]}
    for rule in rules:
        if _rule_key(rule) in existing:
            port = "" if rule["fromPort"] is None else \
                f", from port: {rule['fromPort']}, to port: {rule['toPort']}"
            peer = rule.get("cidr") or rule.get("cidrv6") or rule.get("groupId")
            raise ApiError("InvalidPermission.Duplicate",
                           f"the specified rule \"peer: {peer}, {rule['protocol'].upper()}{port}, "
                           f"ALLOW\" already exists")
    out = []
    for rule in rules:
        rule["ruleId"] = new_id("sgr")
        sg["ingress"].append(rule)
        out.append({"securityGroupRuleId": rule["ruleId"], "groupId": sg["groupId"],
                    "groupOwnerId": ctx.account, "isEgress": False,
                    "ipProtocol": rule["protocol"], "fromPort": rule["fromPort"] if
                    rule["fromPort"] is not None else -1,
                    "toPort": rule["toPort"] if rule["toPort"] is not None else -1,
                    "cidrIpv4": rule.get("cidr"), "cidrIpv6": rule.get("cidrv6"),
                    "referencedGroupInfo": {"groupId": rule["groupId"], "userId": ctx.account}
                    if rule.get("groupId") else None,
                    "description": rule.get("description")})
    return {"return": True, "securityGroupRuleSet": out}


@action("RevokeSecurityGroupIngress", mutating=True)
def revoke_ingress(ctx: Ctx, p: Params) -> dict:
    check_known(p, {"GroupId", "GroupName", "IpPermissions", "IpProtocol", "FromPort", "ToPort",
                    "CidrIp", "SecurityGroupRuleId"})
    sg = _find_group(ctx, p.get("GroupId"), p.get("GroupName"))
    rule_ids = p.get_list("SecurityGroupRuleId")
    keys = {_rule_key(r) for r in _parse_permissions(p)} if not rule_ids else set()
    dry_run(p)
    before = len(sg["ingress"])
    sg["ingress"] = [r for r in sg["ingress"]
                     if _rule_key(r) not in keys and r["ruleId"] not in rule_ids]
    if len(sg["ingress"]) == before:
        raise ApiError("InvalidPermission.NotFound", "The specified rule does not exist in "
                       "this security group.")
    return {"return": True}


def _permission_items(rules: list[dict], account: str) -> list[dict]:
    grouped: dict[tuple, dict] = {}
    for r in rules:
        key = (r["protocol"], r["fromPort"], r["toPort"])
        item = grouped.setdefault(key, {"ipProtocol": r["protocol"], "fromPort": r["fromPort"],
                                        "toPort": r["toPort"], "groups": [], "ipRanges": [],
                                        "ipv6Ranges": [], "prefixListIds": []})
        if r.get("cidr"):
            item["ipRanges"].append({"cidrIp": r["cidr"], "description": r.get("description")})
        elif r.get("cidrv6"):
            item["ipv6Ranges"].append({"cidrIpv6": r["cidrv6"],
                                       "description": r.get("description")})
        else:
            item["groups"].append({"userId": account, "groupId": r["groupId"],
                                   "description": r.get("description")})
    return list(grouped.values())


@action("DescribeSecurityGroups")
def describe_security_groups(ctx: Ctx, p: Params) -> dict:
    check_known(p, {"GroupId", "GroupName", "Filter", "MaxResults", "NextToken"})
    ids, names = p.get_list("GroupId"), p.get_list("GroupName")
    filters = parse_filters(p)
    groups = ctx.region["security_groups"]
    visible = {gid: sg for gid, sg in groups.items() if not ctx.hidden(sg)}
    for gid in ids:
        if gid not in visible:
            raise ApiError("InvalidGroup.NotFound", f"The security group '{gid}' does not exist")
    default_vpc = _default_vpc(ctx)
    for n in names:
        if not any(sg["groupName"] == n and sg["vpcId"] == default_vpc for sg in visible.values()):
            raise ApiError("InvalidGroup.NotFound",
                           f"The security group '{n}' does not exist in default VPC '{default_vpc}'")
    items = []
    for sg in visible.values():
        if ids and sg["groupId"] not in ids:
            continue
        if names and (sg["groupName"] not in names or sg["vpcId"] != default_vpc):
            continue
        def values(n: str, sg: dict = sg) -> list[str] | None:
            fixed = {"group-id": [sg["groupId"]], "group-name": [sg["groupName"]],
                     "vpc-id": [sg["vpcId"]], "description": [sg["description"]],
                     "owner-id": [ctx.account]}
            return fixed.get(n, _tag_values(sg["tags"], n))
        if _filter_ok(filters, values):
            items.append({"ownerId": ctx.account, "groupId": sg["groupId"],
                          "groupName": sg["groupName"], "groupDescription": sg["description"],
                          "vpcId": sg["vpcId"],
                          "ipPermissions": _permission_items(sg["ingress"], ctx.account),
                          "ipPermissionsEgress": [{"ipProtocol": "-1", "groups": [],
                                                   "ipRanges": [{"cidrIp": "0.0.0.0/0"}],
                                                   "ipv6Ranges": [], "prefixListIds": []}],
                          "tagSet": tag_set(sg["tags"])})
    page, nxt = paginate(items, p, 0, 5, 1000)
    return {"securityGroupInfo": page, "nextToken": nxt}
