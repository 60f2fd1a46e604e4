"""EC2 instance, volume and tag actions: RunInstances (ClientToken idempotency, capacity and
quota checks), Describe/Start/Stop/Reboot/TerminateInstances, DescribeVolumes and the tag
actions. Registered into ``ec2.HANDLERS`` on import.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import json
import re
import time

from . import catalogue
from .placement import find_group as find_placement_group
from .ec2 import (Ctx, _filter_ok, _find_group, _tag_specs, _tag_values, action, dry_run,
                  offered, paginate)
from .state import STATE_CODES, iso, new_id
from .wire import ApiError, Params, check_known, parse_filters, parse_tags, tag_set

_INSTANCE_RE = re.compile(r"^i-([0-9a-f]{8}|[0-9a-f]{17})$")
_VOLUME_TYPES = ("gp2", "gp3", "io1", "io2", "st1", "sc1", "standard")
_RUN_PARAMS = {
    "ImageId", "InstanceType", "MinCount", "MaxCount", "KeyName", "SecurityGroupId",
    "SecurityGroup", "ClientToken", "Placement", "SubnetId", "BlockDeviceMapping",
    "MetadataOptions", "InstanceMarketOptions", "TagSpecification", "UserData",
    "IamInstanceProfile", "InstanceInitiatedShutdownBehavior", "EbsOptimized", "Monitoring",
    "NetworkInterface", "PrivateIpAddress", "DisableApiTermination", "CreditSpecification",
    "CpuOptions", "HibernationOptions", "PrivateDnsNameOptions", "MaintenanceOptions",
    "EnclaveOptions", "LaunchTemplate",
}


# -- RunInstances ----------------------------------------------------------------------------
def _fingerprint(p: Params) -> str:
    ignored = {"Action", "Version", "ClientToken", "DryRun", "Placement.AvailabilityZone"}
    items = sorted((k, v) for k, v in p.raw().items()
                   if k not in ignored and not k.startswith("X-Amz-"))
    return hashlib.sha256(json.dumps(items).encode()).hexdigest()


_INTERFACE_TYPES = ["interface", "efa", "efa-only"]


def _parse_network_interfaces(p: Params) -> dict | None:
    """``NetworkInterface.N``: the primary's subnet and groups, and whether any is EFA. EC2
    refuses them beside an instance-level subnet or security group."""
    nics = p.get_structs("NetworkInterface")
    if not nics:
        return None
    for top in ("SubnetId", "SecurityGroupId", "SecurityGroup"):
        if p.has(top):
            level = "subnet ID" if top == "SubnetId" else "security groups"
            raise ApiError("InvalidParameterCombination", f"Network interfaces and an "
                           f"instance-level {level} may not be specified on the same request")
    primary = None
    efa = False
    for nic in nics:
        kind = nic.get_enum("InterfaceType", _INTERFACE_TYPES, "interface")
        efa = efa or kind != "interface"
        if nic.get_int("DeviceIndex", None, 0, 31) == 0 and nic.get_int("NetworkCardIndex", 0) == 0:
            primary = nic
    if primary is None:
        raise ApiError("InvalidParameterValue", "Each network interface requires a device index; "
                       "the primary network interface must have device index 0.")
    return {"subnetId": primary.get("SubnetId"), "groups": primary.get_list("SecurityGroupId"),
            "efa": efa}


def _resolve_placement(ctx: Ctx, p: Params,
                       nics: dict | None) -> tuple[str | None, dict | None]:
    """(zone or None, subnet or None) from ``Placement.AvailabilityZone`` / ``SubnetId`` (or the
    primary network interface's)."""
    zone = p.get("Placement.AvailabilityZone")
    zones = ctx.store.zones(ctx.region_name)
    if zone is not None and zone not in zones:
        raise ApiError("InvalidParameterValue", f"Invalid availability zone: [{zone}]")
    subnet = None
    sid = nics["subnetId"] if nics else p.get("SubnetId")
    if sid:
        subnet = ctx.region["subnets"].get(sid)
        if subnet is None:
            raise ApiError("InvalidSubnetID.NotFound", f"The subnet ID '{sid}' does not exist")
        if zone is not None and zone != subnet["availabilityZone"]:
            raise ApiError("InvalidParameterCombination",
                           f"The specified subnet {sid} is not in Availability Zone {zone}")
        zone = subnet["availabilityZone"]
    return zone, subnet


def _parse_block_devices(p: Params, image: catalogue.Image, snapshot: str) -> list[dict]:
    devices: list[dict] = []
    seen = set()
    for bdm in p.get_structs("BlockDeviceMapping"):
        name = bdm.get("DeviceName")
        if not name:
            raise ApiError("InvalidBlockDeviceMapping", "The device name must be specified")
        if name in seen:
            raise ApiError("InvalidBlockDeviceMapping", f"Duplicate device name {name}")
        seen.add(name)
        if bdm.has("NoDevice") or bdm.has("VirtualName"):
            continue
        ebs = bdm.sub("Ebs")
        vtype = ebs.get_enum("VolumeType", _VOLUME_TYPES, None)
        size = ebs.get_int("VolumeSize", None, 1, 16384)
        is_root = name == image.root_device
        if is_root and size is not None and size < image.root_size_gib:
            raise ApiError("InvalidBlockDeviceMapping",
                           f"Volume of size {size}GB is smaller than snapshot '{snapshot}', "
                           f"expect size >= {image.root_size_gib}GB")
        if not is_root and size is None and not ebs.get("SnapshotId"):
            raise ApiError("InvalidBlockDeviceMapping",
                           f"The device '{name}' must specify a snapshot or a volume size")
        devices.append({
            "deviceName": name, "root": is_root,
            "size": size if size is not None else (image.root_size_gib if is_root else 8),
            "volumeType": vtype or (image.volume_type if is_root else "gp2"),
            "deleteOnTermination": bool(ebs.get_bool("DeleteOnTermination", True)),
            "iops": ebs.get_int("Iops", None, 100, 256000),
            "throughput": ebs.get_int("Throughput", None, 125, 2000),
            "encrypted": bool(ebs.get_bool("Encrypted", False)),
        })
    if not any(d["root"] for d in devices):
        devices.insert(0, {"deviceName": image.root_device, "root": True,
                           "size": image.root_size_gib, "volumeType": image.volume_type,
                           "deleteOnTermination": True, "iops": None, "throughput": None,
                           "encrypted": False})
    return devices


def _parse_metadata(p: Params) -> dict:
    m = p.sub("MetadataOptions")
    return {
        "httpTokens": m.get_enum("HttpTokens", ["optional", "required"], "optional"),
        "httpPutResponseHopLimit": m.get_int("HttpPutResponseHopLimit", 1, 1, 64),
        "httpEndpoint": m.get_enum("HttpEndpoint", ["enabled", "disabled"], "enabled"),
        "httpProtocolIpv6": m.get_enum("HttpProtocolIpv6", ["enabled", "disabled"], "disabled"),
        "instanceMetadataTags": m.get_enum("InstanceMetadataTags", ["enabled", "disabled"],
                                           "disabled"),
        "state": "pending",
    }


def _parse_spot(p: Params, shutdown: str | None) -> dict | None:
    m = p.sub("InstanceMarketOptions")
    market = m.get_enum("MarketType", ["spot", "capacity-block"], None)
    if market is None:
        if p.has("InstanceMarketOptions"):
            raise ApiError("MissingParameter", "The request must contain the parameter "
                           "InstanceMarketOptions.MarketType")
        return None
    s = m.sub("SpotOptions")
    kind = s.get_enum("SpotInstanceType", ["one-time", "persistent"], "one-time")
    behaviour = s.get_enum("InstanceInterruptionBehavior", ["terminate", "stop", "hibernate"],
                           "terminate")
    if kind == "one-time" and behaviour != "terminate":
        raise ApiError("InvalidParameterCombination", "One-time Spot requests only support the "
                       "'terminate' interruption behavior")
    if kind == "persistent" and behaviour == "terminate":
        raise ApiError("InvalidParameterCombination", "Persistent Spot requests need the "
                       "interruption behavior 'stop' or 'hibernate'")
    if kind == "one-time" and shutdown == "stop":
        raise ApiError("InvalidParameterCombination", "A one-time Spot instance cannot use "
                       "InstanceInitiatedShutdownBehavior 'stop'")
    max_price = s.get("MaxPrice")
    if max_price is not None:
        try:
            float(max_price)
        except ValueError:
            raise ApiError("InvalidParameterValue", f"Invalid MaxPrice '{max_price}'") from None
    return {"type": kind, "interruption": behaviour, "maxPrice": max_price}


def _parse_user_data(p: Params) -> str | None:
    raw = p.get("UserData")
    if raw is None:
        return None
    try:
        decoded = base64.b64decode(raw, validate=True)
    except binascii.Error:
        raise ApiError("InvalidParameterValue", "Invalid BASE64 encoding of user data.") from None
    if len(decoded) > 16384:
        raise ApiError("InvalidParameterValue", "User data is limited to 16384 bytes")
    return raw


def _parse_iam_profile(p: Params, account: str) -> dict | None:
    arn, name = p.get("IamInstanceProfile.Arn"), p.get("IamInstanceProfile.Name")
    if arn is None and name is None:
        return None
    if arn is not None and not re.match(r"^arn:aws[a-z-]*:iam::\d{12}:instance-profile/.+$", arn):
        raise ApiError("InvalidParameterValue",
                       f"Value ({arn}) for parameter iamInstanceProfile.arn is invalid.")
    arn = arn or f"arn:aws:iam::{account}:instance-profile/{name}"
    return {"arn": arn, "id": "AIPA" + hashlib.sha256(arn.encode()).hexdigest()[:17].upper()}


def _quota_class(itype: str) -> str:
    family = itype.split(".")[0]
    if family.startswith(("g", "vt")):
        return "G"
    if family.startswith("p"):
        return "P"
    return "Standard"


def _check_limits(ctx: Ctx, itype: catalogue.InstanceType, count: int, spot: bool) -> None:
    live = [i for i in ctx.region["instances"].values()
            if i["state"] in ("pending", "running", "stopping", "shutting-down")]
    limit = ctx.config.get("instance_limit")
    if limit is not None and len(live) + count > int(limit):
        raise ApiError("InstanceLimitExceeded", f"Your quota allows for {int(limit) - len(live)} "
                       f"more running instance(s). You requested at least {count}")
    qclass = _quota_class(itype.name)
    quota = (ctx.config.get("vcpu_quota") or {}).get(qclass)
    if quota is not None and not spot:
        used = sum(catalogue.INSTANCE_TYPES[i["instanceType"]].vcpus for i in live
                   if _quota_class(i["instanceType"]) == qclass and not i.get("spot"))
        if used + itype.vcpus * count > int(quota):
            raise ApiError("VcpuLimitExceeded",
                           f"You have requested more vCPU capacity than your current vCPU limit "
                           f"of {quota} allows for the instance bucket that the specified "
                           f"instance type belongs to ({qclass}).")


def _capacity_left(ctx: Ctx, zone: str, itype: str) -> int | None:
    """Config ``capacity_limit`` ({zone|region|"*": {type|"*": N}}): at most N live instances of
    the type in the zone; None: unlimited."""
    limits = ctx.config.get("capacity_limit") or {}
    for zone_key in (zone, ctx.region_name, "*"):
        rules = limits.get(zone_key) or {}
        for key in (itype, "*"):
            if key in rules:
                live = sum(1 for i in ctx.region["instances"].values()
                           if i["availabilityZone"] == zone and i["instanceType"] == itype
                           and i["state"] in ("pending", "running", "stopping", "stopped"))
                return max(0, int(rules[key]) - live)
    return None


def _capacity_error(ctx: Ctx, zone: str, itype: str, spot: bool) -> str | None:
    cap = ctx.config.get("capacity") or {}
    for zone_key in (zone, ctx.region_name, "*"):
        rules = cap.get(zone_key)
        if not isinstance(rules, dict):
            continue
        for key in ((f"spot:{itype}",) if spot else ()) + (itype, "*"):
            if rules.get(key):
                return str(rules[key])
    return None


def _pick_zone(ctx: Ctx, zone: str | None, itype: str, spot: bool) -> str:
    zones = ctx.store.zones(ctx.region_name)
    supported = [z for z in zones if offered(ctx, z, itype)]
    if zone is None:
        for z in supported:
            if _capacity_error(ctx, z, itype, spot) is None:
                return z
        if not supported:
            raise ApiError("Unsupported", f"The requested configuration is currently not "
                           f"supported. Instance type {itype} is not offered in {ctx.region_name}.")
        raise ApiError("InsufficientInstanceCapacity",
                       f"We currently do not have sufficient {itype} capacity in the "
                       f"Availability Zones you requested. Our system will be working on "
                       f"provisioning additional capacity.")
    others = [z for z in supported if z != zone and _capacity_error(ctx, z, itype, spot) is None]
    code = None if zone in supported else "Unsupported"
    code = code or _capacity_error(ctx, zone, itype, spot)
    if code == "Unsupported":
        raise ApiError("Unsupported",
                       f"Your requested instance type ({itype}) is not supported in your "
                       f"requested Availability Zone ({zone}). Please retry your request by not "
                       f"specifying an Availability Zone or choosing {', '.join(others)}.")
    if code == "InsufficientInstanceCapacity":
        raise ApiError(code, f"We currently do not have sufficient {itype} capacity in the "
                       f"Availability Zone you requested ({zone}). Our system will be working on "
                       f"provisioning additional capacity. You can currently get {itype} "
                       f"capacity by not specifying an Availability Zone in your request or "
                       f"choosing {', '.join(others)}.")
    if code:
        raise ApiError(code, f"{code} for {itype} in {zone} (injected by the emulator)")
    return zone


def _subnet_for(ctx: Ctx, zone: str) -> dict:
    for s in ctx.region["subnets"].values():
        if s["availabilityZone"] == zone and s["defaultForAz"]:
            return s
    raise ApiError("InvalidSubnetID.NotFound", f"No default subnet for availability zone {zone}")


def _private_ip(ctx: Ctx, subnet: dict) -> str:
    """The subnet's next address; with config ``private_ip_pool`` ({"first": "127.N.255.1"}) the
    next of that loopback range instead, so that what runs on the instances (sessions on the test
    machine) reaches the other instances at their private addresses, and only on loopback."""
    pool = ctx.config.get("private_ip_pool")
    if pool:
        first = ipaddress.IPv4Address(pool["first"])
        if not first.is_loopback:
            raise ValueError(f"private_ip_pool must be in 127.0.0.0/8, not {first}")
        taken = ctx.region.get("next_private", 0)
        ctx.region["next_private"] = taken + 1
        return str(first + taken)
    base = subnet["cidrBlock"].split("/")[0].split(".")
    host = subnet["next_host"]
    subnet["next_host"] += 1
    return f"{base[0]}.{base[1]}.{int(base[2]) + host // 256}.{host % 256}"


@action("RunInstances", mutating=True)
def run_instances(ctx: Ctx, p: Params) -> dict:
    check_known(p, _RUN_PARAMS)
    token = p.get("ClientToken")
    if token is not None and (len(token) > 64 or not token.isascii()):
        raise ApiError("InvalidParameterValue", "ClientToken must be at most 64 ASCII characters")
    nics = _parse_network_interfaces(p)
    zone, subnet = _resolve_placement(ctx, p, nics)
    token_key = f"{zone or 'regional'}|{token}" if token else None
    if token_key and token_key in ctx.region["client_tokens"]:
        return _replay_token(ctx, p, token_key)

    image_id = p.require("ImageId")
    if not re.match(r"^ami-([0-9a-f]{8}|[0-9a-f]{17})$", image_id):
        raise ApiError("InvalidAMIID.Malformed", f"Invalid id: \"{image_id}\" (expecting \"ami-...\")")
    image = catalogue.image_by_id(ctx.region_name, image_id)
    if image is None:
        raise ApiError("InvalidAMIID.NotFound", f"The image id '[{image_id}]' does not exist")
    type_name = p.get("InstanceType") or "m1.small"
    itype = catalogue.INSTANCE_TYPES.get(type_name)
    if itype is None:
        raise ApiError("InvalidParameterValue", f"Invalid value '{type_name}' for InstanceType.")
    if itype.arch != image.arch:
        raise ApiError("InvalidParameterValue",
                       f"The architecture '{itype.arch}' of the specified instance type does not "
                       f"match the architecture '{image.arch}' of the specified AMI. Specify an "
                       f"instance type and an AMI that have matching architectures, and try again.")
    min_count = p.get_int("MinCount", None, 1, 1000)
    max_count = p.get_int("MaxCount", None, 1, 1000)
    if min_count is None:
        raise ApiError("MissingParameter", "The request must contain the parameter MinCount")
    if max_count is None:
        raise ApiError("MissingParameter", "The request must contain the parameter MaxCount")
    if min_count > max_count:
        raise ApiError("InvalidParameterValue", "MinCount must be less than or equal to MaxCount")

    key_name = p.get("KeyName")
    key = None
    if key_name is not None:
        key = ctx.region["key_pairs"].get(key_name)
        if key is None:
            raise ApiError("InvalidKeyPair.NotFound", f"The key pair '{key_name}' does not exist")
    vpc_id = subnet["vpcId"] if subnet else next(v["vpcId"] for v in ctx.region["vpcs"].values()
                                                  if v["isDefault"])
    group_ids = nics["groups"] if nics else p.get_list("SecurityGroupId")
    groups = [_find_group(ctx, gid, None) for gid in group_ids]
    groups += [_find_group(ctx, None, name, vpc_id) for name in p.get_list("SecurityGroup")]
    for sg in groups:
        if sg["vpcId"] != vpc_id:
            raise ApiError("InvalidParameter", f"Security group {sg['groupId']} and subnet "
                           f"belong to different networks.")
    if not groups:
        groups = [_find_group(ctx, None, "default", vpc_id)]

    if nics and nics["efa"] and not itype.efa:
        # What EC2 answers (observed): the generic Unsupported, with this message.
        raise ApiError("Unsupported", "The requested configuration is currently not supported. "
                       "Please check the documentation for supported configurations.")
    pg_name = p.get("Placement.GroupName")
    placement_group = find_placement_group(ctx, pg_name) if pg_name else None
    explicit = p.get_enum("InstanceInitiatedShutdownBehavior", ["stop", "terminate"], None)
    spot = _parse_spot(p, explicit)
    shutdown = explicit or ("terminate" if spot and spot["type"] == "one-time" else "stop")
    devices = _parse_block_devices(p, image, image.snapshot_id(ctx.region_name))
    metadata = _parse_metadata(p)
    user_data = _parse_user_data(p)
    profile = _parse_iam_profile(p, ctx.account)
    tags = _tag_specs(p, {"instance", "volume", "network-interface", "spot-instances-request",
                          "elastic-gpu"})
    dry_run(p)

    zone = _pick_zone(ctx, zone, itype.name, spot is not None)
    left = _capacity_left(ctx, zone, itype.name)
    if left is not None and left < min_count:
        # All or nothing: fewer than MinCount available launches none.
        raise ApiError("InsufficientInstanceCapacity",
                       f"We currently do not have sufficient {itype.name} capacity in the "
                       f"Availability Zone you requested ({zone}). Our system will be working on "
                       f"provisioning additional capacity.")
    count = max_count if left is None else min(max_count, left)
    _check_limits(ctx, itype, count, spot is not None)
    if spot and spot["maxPrice"] is not None:
        price = (ctx.config.get("spot_prices") or {}).get(itype.name)
        if price is not None and float(spot["maxPrice"]) < float(price):
            raise ApiError("SpotMaxPriceTooLow", f"Your Spot request price of {spot['maxPrice']} "
                           f"is lower than the minimum required Spot request fulfillment price "
                           f"of {price}.")
    subnet = subnet or _subnet_for(ctx, zone)

    reservation_id = new_id("r")
    instance_ids = []
    for index in range(count):
        inst = _new_instance(ctx, p, image, itype, zone, subnet, key, groups, devices,
                             metadata, shutdown, spot, user_data, profile, tags, index,
                             reservation_id, token)
        inst["placementGroup"] = placement_group["groupName"] if placement_group else ""
        inst["efa"] = bool(nics and nics["efa"])
        instance_ids.append(inst["id"])
    ctx.region["reservations"][reservation_id] = {
        "reservationId": reservation_id, "instanceIds": instance_ids, "ownerId": ctx.account}
    if token_key:
        ctx.region["client_tokens"][token_key] = {"fingerprint": _fingerprint(p),
                                                  "reservationId": reservation_id}
    return _reservation_body(ctx, reservation_id, hide=False)


def _replay_token(ctx: Ctx, p: Params, token_key: str) -> dict:
    record = ctx.region["client_tokens"][token_key]
    if record["fingerprint"] != _fingerprint(p):
        raise ApiError("IdempotentParameterMismatch",
                       "Arguments on this idempotent request are inconsistent with arguments "
                       "used in previous request(s).")
    res = ctx.region["reservations"].get(record["reservationId"])
    insts = [ctx.region["instances"].get(i) for i in (res or {}).get("instanceIds", [])]
    if not insts or all(i is None or i["state"] == "terminated" for i in insts):
        raise ApiError("IdempotentInstanceTerminated",
                       "The client token you provided is associated with a resource that is "
                       "already deleted. Please use a different client token.")
    return _reservation_body(ctx, record["reservationId"], hide=False)


def _new_instance(ctx: Ctx, p: Params, image: catalogue.Image, itype: catalogue.InstanceType,
                  zone: str, subnet: dict, key: dict | None, groups: list[dict],
                  devices: list[dict], metadata: dict, shutdown: str, spot: dict | None,
                  user_data: str | None, profile: dict | None, tags: dict, index: int,
                  reservation_id: str, token: str | None) -> dict:
    iid = new_id("i")
    block = []
    for dev in devices:
        vid = new_id("vol")
        ctx.region["volumes"][vid] = {
            "volumeId": vid, "size": dev["size"], "volumeType": dev["volumeType"],
            "iops": dev["iops"] or (3000 if dev["volumeType"] == "gp3" else None),
            "throughput": dev["throughput"] or (125 if dev["volumeType"] == "gp3" else None),
            "encrypted": dev["encrypted"], "availabilityZone": zone, "state": "in-use",
            "snapshotId": image.snapshot_id(ctx.region_name) if dev["root"] else "",
            "created_at": ctx.now, "tags": dict(tags.get("volume", {})),
            "attachment": {"instanceId": iid, "device": dev["deviceName"],
                           "deleteOnTermination": dev["deleteOnTermination"],
                           "attachTime": ctx.now}}
        block.append({"deviceName": dev["deviceName"], "volumeId": vid,
                      "deleteOnTermination": dev["deleteOnTermination"], "attachTime": ctx.now})
    eni = new_id("eni")
    ctx.region["enis"][eni] = {"networkInterfaceId": eni, "instanceId": iid,
                               "tags": dict(tags.get("network-interface", {}))}
    inst = {
        "id": iid, "reservationId": reservation_id, "imageId": image.image_id(ctx.region_name),
        "instanceType": itype.name, "architecture": itype.arch, "keyName": key["keyName"] if key
        else None, "authorizedKeys": [key["publicKey"]] if key else [],
        "launchTime": ctx.now, "created_at": ctx.now, "availabilityZone": zone,
        "subnetId": subnet["subnetId"], "vpcId": subnet["vpcId"],
        "privateIpAddress": _private_ip(ctx, subnet), "publicIp": None, "networkInterfaceId": eni,
        "state": "pending", "state_since": ctx.now, "running_since": None,
        "stateReason": {"code": "pending", "message": "pending"}, "transitionReason": "",
        "groups": [g["groupId"] for g in groups], "tags": dict(tags.get("instance", {})),
        "clientToken": token or "", "amiLaunchIndex": index, "metadataOptions": dict(metadata),
        "shutdownBehavior": shutdown, "rootDeviceName": image.root_device,
        "blockDevices": block, "userData": user_data, "iamInstanceProfile": profile,
        "spot": spot, "spotInstanceRequestId": new_id("sir") if spot else None,
        "spotRequestTags": dict(tags.get("spot-instances-request", {})) if spot else {},
        "defaultUser": image.default_user, "sshd_pid": None, "sshd_address": None,
        "force_stop": False, "reboot_until": None,
    }
    ctx.region["instances"][iid] = inst
    return inst


# -- rendering -----------------------------------------------------------------------------------
def _state(inst: dict) -> dict:
    return {"code": STATE_CODES[inst["state"]], "name": inst["state"]}


def _instance_item(ctx: Ctx, inst: dict) -> dict:
    groups = ctx.region["security_groups"]
    terminated = inst["state"] == "terminated"
    private_dns = "ip-" + inst["privateIpAddress"].replace(".", "-") + \
        (".ec2.internal" if ctx.region_name == "us-east-1" else f".{ctx.region_name}.compute.internal")
    group_set = [{"groupId": g, "groupName": groups[g]["groupName"] if g in groups else ""}
                 for g in inst["groups"]]
    spot = inst.get("spot")
    return {
        "instanceId": inst["id"], "imageId": inst["imageId"], "instanceState": _state(inst),
        "privateDnsName": "" if terminated else private_dns, "dnsName": "",
        "reason": inst.get("transitionReason", ""), "keyName": inst.get("keyName"),
        "amiLaunchIndex": inst["amiLaunchIndex"], "productCodes": [],
        "instanceType": inst["instanceType"], "launchTime": iso(inst["launchTime"]),
        "placement": {"availabilityZone": inst["availabilityZone"],
                      "groupName": inst.get("placementGroup", ""),
                      "tenancy": "default"},
        "monitoring": {"state": "disabled"},
        "subnetId": None if terminated else inst["subnetId"],
        "vpcId": None if terminated else inst["vpcId"],
        "privateIpAddress": None if terminated else inst["privateIpAddress"],
        "ipAddress": inst.get("publicIp"), "sourceDestCheck": True, "groupSet": group_set,
        "stateReason": inst.get("stateReason"), "architecture": inst["architecture"],
        "rootDeviceType": "ebs", "rootDeviceName": inst["rootDeviceName"],
        "blockDeviceMapping": [] if terminated else [
            {"deviceName": b["deviceName"], "ebs": {
                "volumeId": b["volumeId"], "status": "attached", "attachTime": iso(b["attachTime"]),
                "deleteOnTermination": b["deleteOnTermination"]}} for b in inst["blockDevices"]],
        "instanceLifecycle": "spot" if spot else None,
        "spotInstanceRequestId": inst.get("spotInstanceRequestId"),
        "virtualizationType": "hvm", "clientToken": inst.get("clientToken", ""),
        "tagSet": tag_set(inst["tags"]), "hypervisor": "xen",
        "iamInstanceProfile": inst.get("iamInstanceProfile"),
        "networkInterfaceSet": [] if terminated else [{
            "networkInterfaceId": inst["networkInterfaceId"], "subnetId": inst["subnetId"],
            "vpcId": inst["vpcId"], "ownerId": ctx.account, "status": "in-use",
            "privateIpAddress": inst["privateIpAddress"], "sourceDestCheck": True,
            "interfaceType": "efa" if inst.get("efa") else "interface",
            "groupSet": group_set,
            "association": {"publicIp": inst["publicIp"], "publicDnsName": "",
                            "ipOwnerId": "amazon"} if inst.get("publicIp") else None}],
        "ebsOptimized": False, "enaSupport": True,
        "metadataOptions": inst["metadataOptions"],
        "platformDetails": "Linux/UNIX", "usageOperation": "RunInstances",
        "instanceInitiatedShutdownBehavior": inst["shutdownBehavior"],
    }


def _reservation_body(ctx: Ctx, reservation_id: str, hide: bool) -> dict:
    res = ctx.region["reservations"][reservation_id]
    insts = [ctx.region["instances"][i] for i in res["instanceIds"]
             if i in ctx.region["instances"]]
    return {"reservationId": reservation_id, "ownerId": res["ownerId"], "groupSet": [],
            "instancesSet": [_instance_item(ctx, i) for i in insts if not (hide and ctx.hidden(i))]}


# -- instance lookups ------------------------------------------------------------------------------
def _check_ids(ids: list[str]) -> None:
    for iid in ids:
        if not _INSTANCE_RE.match(iid):
            raise ApiError("InvalidInstanceID.Malformed", f"Invalid id: \"{iid}\"")


def _instances_by_id(ctx: Ctx, ids: list[str]) -> list[dict]:
    _check_ids(ids)
    found, missing = [], []
    for iid in ids:
        inst = ctx.region["instances"].get(iid)
        if inst is None or ctx.hidden(inst):
            missing.append(iid)
        else:
            found.append(inst)
    if len(missing) == 1:
        raise ApiError("InvalidInstanceID.NotFound", f"The instance ID '{missing[0]}' does not exist")
    if missing:
        raise ApiError("InvalidInstanceID.NotFound",
                       f"The instance IDs '{', '.join(missing)}' do not exist")
    return found


def _instance_filter_values(ctx: Ctx, inst: dict, name: str) -> list[str] | None:
    fixed = {
        "instance-id": [inst["id"]], "instance-state-name": [inst["state"]],
        "instance-state-code": [str(STATE_CODES[inst["state"]])],
        "client-token": [inst["clientToken"]] if inst.get("clientToken") else [],
        "instance-type": [inst["instanceType"]], "availability-zone": [inst["availabilityZone"]],
        "key-name": [inst["keyName"]] if inst.get("keyName") else [],
        "instance-lifecycle": ["spot"] if inst.get("spot") else [],
        "spot-instance-request-id": [inst["spotInstanceRequestId"]]
        if inst.get("spotInstanceRequestId") else [],
        "image-id": [inst["imageId"]], "vpc-id": [inst["vpcId"]], "subnet-id": [inst["subnetId"]],
        "ip-address": [inst["publicIp"]] if inst.get("publicIp") else [],
        "private-ip-address": [inst["privateIpAddress"]],
        "reservation-id": [inst["reservationId"]], "architecture": [inst["architecture"]],
        "instance.group-id": inst["groups"], "root-device-name": [inst["rootDeviceName"]],
        "metadata-options.http-tokens": [inst["metadataOptions"]["httpTokens"]],
        "placement-group-name": [inst["placementGroup"]] if inst.get("placementGroup") else [],
    }
    return fixed.get(name, _tag_values(inst["tags"], name))


@action("DescribeInstances")
def describe_instances(ctx: Ctx, p: Params) -> dict:
    check_known(p, {"InstanceId", "Filter", "MaxResults", "NextToken"})
    ids = p.get_list("InstanceId")
    if ids and p.has("MaxResults"):
        raise ApiError("InvalidParameterCombination", "The parameter instancesSet cannot be used "
                       "with the parameter maxResults")
    filters = parse_filters(p)
    wanted = {i["id"] for i in _instances_by_id(ctx, ids)} if ids else None
    reservations = []
    for rid, res in ctx.region["reservations"].items():
        insts = [ctx.region["instances"][i] for i in res["instanceIds"]
                 if i in ctx.region["instances"]]
        keep = [i for i in insts if not ctx.hidden(i) and (wanted is None or i["id"] in wanted)
                and _filter_ok(filters, lambda n, i=i: _instance_filter_values(ctx, i, n))]
        if keep:
            reservations.append({"reservationId": rid, "ownerId": res["ownerId"], "groupSet": [],
                                 "instancesSet": [_instance_item(ctx, i) for i in keep]})
    page, nxt = paginate(reservations, p, 0, 5, 1000)
    return {"reservationSet": page, "nextToken": nxt}


def _transition(inst: dict, previous: str) -> dict:
    return {"instanceId": inst["id"], "currentState": _state(inst),
            "previousState": {"code": STATE_CODES[previous], "name": previous}}


def _user_reason(ctx: Ctx) -> str:
    return f"User initiated ({time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(ctx.now))} GMT)"


@action("StartInstances", mutating=True)
def start_instances(ctx: Ctx, p: Params) -> dict:
    check_known(p, {"InstanceId", "AdditionalInfo"})
    insts = _instances_by_id(ctx, p.get_list("InstanceId") or _missing_ids())
    for inst in insts:
        if inst["state"] not in ("stopped", "pending", "running"):
            raise ApiError("IncorrectInstanceState", f"The instance '{inst['id']}' is not in a "
                           f"state from which it can be started.")
    dry_run(p)
    out = []
    for inst in insts:
        previous = inst["state"]
        if previous == "stopped":
            ctx.store.set_state(inst, "pending", ctx.now, ("pending", "pending"))
            inst["transitionReason"] = ""
            inst["force_stop"] = False
        out.append(_transition(inst, previous))
    return {"instancesSet": out}


def _missing_ids() -> list[str]:
    raise ApiError("MissingParameter", "The request must contain the parameter InstanceId")


@action("StopInstances", mutating=True)
def stop_instances(ctx: Ctx, p: Params) -> dict:
    check_known(p, {"InstanceId", "Force", "Hibernate"})
    insts = _instances_by_id(ctx, p.get_list("InstanceId") or _missing_ids())
    force = bool(p.get_bool("Force", False))
    for inst in insts:
        if inst["state"] in ("pending", "shutting-down", "terminated"):
            raise ApiError("IncorrectInstanceState", f"This instance '{inst['id']}' is not in a "
                           f"state from which it can be stopped.")
        if inst.get("spot") and inst["spot"]["type"] == "one-time":
            raise ApiError("UnsupportedOperation", f"You can't stop the Spot Instance "
                           f"'{inst['id']}' because it is associated with a one-time Spot "
                           f"Instance request. You can only stop Spot Instances associated "
                           f"with persistent Spot Instance requests.")
    dry_run(p)
    out = []
    for inst in insts:
        previous = inst["state"]
        if previous == "running":
            ctx.store.set_state(inst, "stopping", ctx.now,
                                ("Client.UserInitiatedShutdown",
                                 "Client.UserInitiatedShutdown: User initiated shutdown"))
            inst["transitionReason"] = _user_reason(ctx)
            inst["force_stop"] = force
        elif previous == "stopping" and force:
            inst["force_stop"] = True
        out.append(_transition(inst, previous))
    return {"instancesSet": out}


@action("RebootInstances", mutating=True)
def reboot_instances(ctx: Ctx, p: Params) -> dict:
    check_known(p, {"InstanceId"})
    insts = _instances_by_id(ctx, p.get_list("InstanceId") or _missing_ids())
    for inst in insts:
        if inst["state"] not in ("running", "pending"):
            raise ApiError("IncorrectInstanceState",
                           f"The instance '{inst['id']}' is not in a state from which it can be "
                           f"rebooted.")
    dry_run(p)
    for inst in insts:
        if inst["state"] == "running":
            # The guest takes a moment to shut down before the reboot (its sshd still answers).
            delays = ctx.config["delays"]
            inst["reboot_from"] = ctx.now + float(delays.get("reboot_begin", 0.0))
            inst["reboot_until"] = inst["reboot_from"] + float(delays.get("reboot", 1.0))
            # The boot the guest is in once the reboot begins: an sshd of an older boot is ended
            # then even if no reconcile falls inside the reboot window (a loaded machine).
            inst["boot"] = int(inst.get("boot") or 0) + 1
    return {"return": True}


@action("ModifyInstanceAttribute", mutating=True)
def modify_instance_attribute(ctx: Ctx, p: Params) -> dict:
    """Only InstanceInitiatedShutdownBehavior (``….Value``, or ``Attribute`` + ``Value``)."""
    check_known(p, {"InstanceId", "InstanceInitiatedShutdownBehavior", "Attribute", "Value"})
    iid = p.require("InstanceId")
    (inst,) = _instances_by_id(ctx, [iid])
    if p.has("InstanceInitiatedShutdownBehavior"):
        value = p.sub("InstanceInitiatedShutdownBehavior").require("Value")
    elif p.get("Attribute") == "instanceInitiatedShutdownBehavior":
        value = p.require("Value")
    else:
        raise ApiError("InvalidParameterCombination", "This emulator modifies only the "
                       "instanceInitiatedShutdownBehavior attribute")
    if value not in ("stop", "terminate"):
        raise ApiError("InvalidParameterValue", f"Value ({value}) for parameter value is "
                       f"invalid. Valid values are stop and terminate.")
    if inst["state"] == "terminated":
        raise ApiError("IncorrectInstanceState", f"The instance '{iid}' is not in a state from "
                       f"which it can be modified.")
    spot = inst.get("spot")
    if spot and spot["type"] == "one-time" and value == "stop":
        raise ApiError("InvalidParameterCombination", "A one-time Spot instance cannot use "
                       "InstanceInitiatedShutdownBehavior 'stop'")
    dry_run(p)
    inst["shutdownBehavior"] = value
    return {"return": True}


@action("DescribeInstanceAttribute")
def describe_instance_attribute(ctx: Ctx, p: Params) -> dict:
    """Only instanceInitiatedShutdownBehavior."""
    check_known(p, {"InstanceId", "Attribute"})
    iid = p.require("InstanceId")
    attribute = p.require("Attribute")
    (inst,) = _instances_by_id(ctx, [iid])
    if attribute != "instanceInitiatedShutdownBehavior":
        raise ApiError("InvalidParameterValue", f"This emulator describes only "
                       f"instanceInitiatedShutdownBehavior, not {attribute}")
    return {"instanceId": iid,
            "instanceInitiatedShutdownBehavior": {"value": inst["shutdownBehavior"]}}


@action("TerminateInstances", mutating=True)
def terminate_instances(ctx: Ctx, p: Params) -> dict:
    check_known(p, {"InstanceId"})
    insts = _instances_by_id(ctx, p.get_list("InstanceId") or _missing_ids())
    dry_run(p)
    out = []
    for inst in insts:
        previous = inst["state"]
        if previous not in ("shutting-down", "terminated"):
            ctx.store.set_state(inst, "shutting-down", ctx.now,
                                ("Client.UserInitiatedShutdown",
                                 "Client.UserInitiatedShutdown: User initiated shutdown"))
            inst["transitionReason"] = _user_reason(ctx)
        out.append(_transition(inst, previous))
    return {"instancesSet": out}


def power_off(ctx: Ctx, iid: str) -> dict:
    """The guest powered itself off: stop or terminate per InstanceInitiatedShutdownBehavior."""
    inst = ctx.region["instances"].get(iid)
    if inst is None:
        raise ApiError("InvalidInstanceID.NotFound", f"The instance ID '{iid}' does not exist")
    if inst["state"] != "running":
        raise ApiError("IncorrectInstanceState", f"Instance {iid} is {inst['state']}")
    reason = ("Client.InstanceInitiatedShutdown",
              "Client.InstanceInitiatedShutdown: Instance initiated shutdown")
    target = "shutting-down" if inst["shutdownBehavior"] == "terminate" else "stopping"
    ctx.store.set_state(inst, target, ctx.now, reason)
    inst["force_stop"] = False
    return {"instanceId": iid, "state": target}


# -- volumes ------------------------------------------------------------------------------------------
@action("DescribeVolumes")
def describe_volumes(ctx: Ctx, p: Params) -> dict:
    check_known(p, {"VolumeId", "Filter", "MaxResults", "NextToken"})
    ids = p.get_list("VolumeId")
    filters = parse_filters(p)
    vols = ctx.region["volumes"]
    for vid in ids:
        if vid not in vols:
            raise ApiError("InvalidVolume.NotFound", f"The volume '{vid}' does not exist.")
    items = []
    for vol in vols.values():
        if ids and vol["volumeId"] not in ids:
            continue
        att = vol.get("attachment")
        def values(n: str, v: dict = vol, a: dict | None = att) -> list[str] | None:
            fixed = {"volume-id": [v["volumeId"]], "status": [v["state"]],
                     "availability-zone": [v["availabilityZone"]], "volume-type": [v["volumeType"]],
                     "size": [str(v["size"])], "snapshot-id": [v["snapshotId"]],
                     "attachment.instance-id": [a["instanceId"]] if a else [],
                     "attachment.device": [a["device"]] if a else [],
                     "attachment.status": ["attached"] if a else [],
                     "attachment.delete-on-termination":
                         [str(a["deleteOnTermination"]).lower()] if a else []}
            return fixed.get(n, _tag_values(v["tags"], n))
        if _filter_ok(filters, values):
            items.append({
                "volumeId": vol["volumeId"], "size": vol["size"], "snapshotId": vol["snapshotId"],
                "availabilityZone": vol["availabilityZone"], "status": vol["state"],
                "createTime": iso(vol["created_at"]),
                "attachmentSet": [{"volumeId": vol["volumeId"], "instanceId": att["instanceId"],
                                   "device": att["device"], "status": "attached",
                                   "attachTime": iso(att["attachTime"]),
                                   "deleteOnTermination": att["deleteOnTermination"]}] if att else [],
                "volumeType": vol["volumeType"], "iops": vol.get("iops"),
                "throughput": vol.get("throughput"), "encrypted": vol["encrypted"],
                "multiAttachEnabled": False, "tagSet": tag_set(vol["tags"])})
    page, nxt = paginate(items, p, 0, 5, 1000)
    return {"volumeSet": page, "nextToken": nxt}


# -- tags ---------------------------------------------------------------------------------------------
_RESOURCE_KINDS = {"i": ("instance", "instances", "InvalidInstanceID.NotFound"),
                   "vol": ("volume", "volumes", "InvalidVolume.NotFound"),
                   "sg": ("security-group", "security_groups", "InvalidGroup.NotFound"),
                   "eni": ("network-interface", "enis", "InvalidNetworkInterfaceID.NotFound"),
                   "vpc": ("vpc", "vpcs", "InvalidVpcID.NotFound"),
                   "subnet": ("subnet", "subnets", "InvalidSubnetID.NotFound"),
                   "key": ("key-pair", "key_pairs", "InvalidKeyPair.NotFound")}


def _resource(ctx: Ctx, rid: str) -> dict:
    prefix = rid.split("-", 1)[0]
    kind = _RESOURCE_KINDS.get(prefix)
    if kind is None or "-" not in rid:
        raise ApiError("InvalidID", f"The ID '{rid}' is not valid")
    table = ctx.region[kind[1]]
    if prefix == "key":
        res = next((kp for kp in table.values() if kp["keyPairId"] == rid), None)
    else:
        res = table.get(rid)
    if res is None or (prefix in ("i", "sg") and ctx.hidden(res)):
        raise ApiError(kind[2], f"The {kind[0]} ID '{rid}' does not exist")
    return res


@action("CreateTags", mutating=True)
def create_tags(ctx: Ctx, p: Params) -> dict:
    check_known(p, {"ResourceId", "Tag"})
    ids = p.get_list("ResourceId") or _missing_resource()
    tags = parse_tags(p)
    if not tags:
        raise ApiError("MissingParameter", "The request must contain the parameter Tag")
    resources = [_resource(ctx, rid) for rid in ids]
    dry_run(p)
    for res in resources:
        merged = {**res["tags"], **dict(tags)}
        if len(merged) > 50:
            raise ApiError("TagLimitExceeded", "The maximum number of tags per resource is 50")
        res["tags"] = merged
    return {"return": True}


def _missing_resource() -> list[str]:
    raise ApiError("MissingParameter", "The request must contain the parameter ResourceId")


@action("DeleteTags", mutating=True)
def delete_tags(ctx: Ctx, p: Params) -> dict:
    check_known(p, {"ResourceId", "Tag"})
    ids = p.get_list("ResourceId") or _missing_resource()
    resources = [_resource(ctx, rid) for rid in ids]
    specs = p.get_structs("Tag")
    dry_run(p)
    for res in resources:
        if not specs:
            res["tags"] = {}
        for spec in specs:
            key = spec.get("Key")
            if key in res["tags"] and (not spec.has("Value") or res["tags"][key] == spec.get("Value")):
                del res["tags"][key]
    return {"return": True}


@action("DescribeTags")
def describe_tags(ctx: Ctx, p: Params) -> dict:
    check_known(p, {"Filter", "MaxResults", "NextToken"})
    filters = parse_filters(p)
    items = []
    for prefix, (rtype, table, _) in _RESOURCE_KINDS.items():
        for res in ctx.region[table].values():
            if prefix in ("i", "sg") and ctx.hidden(res):
                continue
            rid = res.get("keyPairId") if prefix == "key" else \
                res.get("id") or res.get(_ID_FIELDS[prefix])
            for key, value in res["tags"].items():
                fields = {"resource-id": [rid], "resource-type": [rtype], "key": [key],
                          "value": [value]}
                def values(n: str, f: dict = fields, t: dict = res["tags"]) -> list[str] | None:
                    return f.get(n, _tag_values(t, n))
                if _filter_ok(filters, values):
                    items.append({"resourceId": rid, "resourceType": rtype, "key": key,
                                  "value": value})
    page, nxt = paginate(items, p, 0, 5, 1000)
    return {"tagSet": page, "nextToken": nxt}


_ID_FIELDS = {"vol": "volumeId", "sg": "groupId", "eni": "networkInterfaceId", "vpc": "vpcId",
              "subnet": "subnetId"}
