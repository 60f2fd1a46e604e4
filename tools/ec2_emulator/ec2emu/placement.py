"""Placement groups: CreatePlacementGroup, DescribePlacementGroups, DeletePlacementGroup.

As on EC2: names are unique per region (``InvalidPlacementGroup.Duplicate``), an unknown name is
``InvalidPlacementGroup.Unknown``, a group that still holds instances (any state but terminated)
cannot be deleted (``InvalidPlacementGroup.InUse``), and a fresh group is invisible for the
configured ``consistency_delay`` like every other resource. RunInstances' ``Placement.GroupName``
is checked by :func:`find_group` (instances.py).
"""
from __future__ import annotations

from .ec2 import Ctx, _filter_ok, _tag_specs, _tag_values, action, dry_run
from .state import new_id
from .wire import ApiError, Params, check_known, parse_filters, tag_set

_STRATEGIES = ["cluster", "spread", "partition"]


def _groups(ctx: Ctx) -> dict[str, dict]:
    return ctx.region["placement_groups"]


def _unknown(name: str) -> ApiError:
    return ApiError("InvalidPlacementGroup.Unknown", f"The Placement Group '{name}' is unknown.")


def find_group(ctx: Ctx, name: str) -> dict:
    """The visible group called name, or ``InvalidPlacementGroup.Unknown``."""
    group = _groups(ctx).get(name)
    if group is None or ctx.hidden(group):
        raise _unknown(name)
    return group


def _members(ctx: Ctx, name: str) -> list[dict]:
    return [i for i in ctx.region["instances"].values()
            if i.get("placementGroup") == name and i["state"] != "terminated"]


def _item(ctx: Ctx, group: dict) -> dict:
    return {"groupName": group["groupName"], "state": "available",
            "strategy": group["strategy"], "partitionCount": group.get("partitionCount"),
            "groupId": group["groupId"],
            "groupArn": f"arn:aws:ec2:{ctx.region_name}:{ctx.account}:placement-group/"
                        f"{group['groupName']}",
            "tagSet": tag_set(group["tags"])}


@action("CreatePlacementGroup", mutating=True)
def create_placement_group(ctx: Ctx, p: Params) -> dict:
    check_known(p, {"GroupName", "Strategy", "PartitionCount", "SpreadLevel",
                    "TagSpecification"})
    name = p.require("GroupName")
    if len(name) > 255:
        raise ApiError("InvalidParameterValue", "Placement group names are limited to 255 "
                       "characters")
    strategy = p.get_enum("Strategy", _STRATEGIES, None)
    if strategy is None:
        raise ApiError("MissingParameter", "The request must contain the parameter Strategy")
    partitions = p.get_int("PartitionCount", None, 1, 7)
    if partitions is not None and strategy != "partition":
        raise ApiError("InvalidParameterCombination",
                       "PartitionCount is only valid for the partition strategy")
    tags = _tag_specs(p, {"placement-group"}).get("placement-group", {})
    dry_run(p)
    if name in _groups(ctx):
        raise ApiError("InvalidPlacementGroup.Duplicate",
                       f"The Placement Group '{name}' already exists.")
    group = {"groupName": name, "groupId": new_id("pg"), "strategy": strategy,
             "partitionCount": partitions, "tags": tags, "created_at": ctx.now}
    _groups(ctx)[name] = group
    return {"return": True, "placementGroup": _item(ctx, group)}


@action("DescribePlacementGroups")
def describe_placement_groups(ctx: Ctx, p: Params) -> dict:
    check_known(p, {"GroupName", "GroupId", "Filter"})
    names, ids = p.get_list("GroupName"), p.get_list("GroupId")
    filters = parse_filters(p)
    visible = [g for g in _groups(ctx).values() if not ctx.hidden(g)]
    for name in names:
        if not any(g["groupName"] == name for g in visible):
            raise _unknown(name)
    for gid in ids:
        if not any(g["groupId"] == gid for g in visible):
            raise ApiError("InvalidPlacementGroupId.NotFound",
                           f"The Placement Group ID '{gid}' does not exist.")
    items = []
    for g in visible:
        if (names and g["groupName"] not in names) or (ids and g["groupId"] not in ids):
            continue

        def values(n: str, g: dict = g) -> list[str] | None:
            fixed = {"group-name": [g["groupName"]], "group-id": [g["groupId"]],
                     "state": ["available"], "strategy": [g["strategy"]]}
            return fixed.get(n, _tag_values(g["tags"], n))
        if _filter_ok(filters, values):
            items.append(_item(ctx, g))
    return {"placementGroupSet": items}


@action("DeletePlacementGroup", mutating=True)
def delete_placement_group(ctx: Ctx, p: Params) -> dict:
    check_known(p, {"GroupName"})
    group = find_group(ctx, p.require("GroupName"))
    dry_run(p)
    if _members(ctx, group["groupName"]):
        raise ApiError("InvalidPlacementGroup.InUse",
                       f"The placement group '{group['groupName']}' is in use and may not be "
                       f"deleted.")
    del _groups(ctx)[group["groupName"]]
    return {"return": True}
