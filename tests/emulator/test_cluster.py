"""Tests for the EC2 emulator's cluster pieces: placement groups, all-or-nothing launches of N
instances into one, EFA interfaces only where the type has them, and the security group's rule
that admits the group itself. Run with the other emulator tests (unittest discover)."""
from __future__ import annotations

import base64
import xml.etree.ElementTree as ET

from test_emulator import EmulatorTestBase, cloud_config, find_all, find_text


class ClusterTests(EmulatorTestBase):
    def pg(self, action: str, **params: str):
        return self.emu.query({"Action": action, **params})

    def live(self) -> list[dict]:
        return [i for i in self.emu.state()["regions"]["us-east-1"]["instances"].values()
                if i["state"] != "terminated"]

    def test_placement_group_lifecycle_and_in_use(self):
        status, root = self.pg("CreatePlacementGroup", GroupName="gm-c1", Strategy="cluster",
                               **{"TagSpecification.1.ResourceType": "placement-group",
                                  "TagSpecification.1.Tag.1.Key": "gpumachine",
                                  "TagSpecification.1.Tag.1.Value": "c1"})
        self.assertEqual(status, 200, ET.tostring(root))
        self.assertEqual(find_text(root, "strategy"), "cluster")
        self.assertTrue(find_text(root, "groupId").startswith("pg-"))
        self.assert_error(self.pg("CreatePlacementGroup", GroupName="gm-c1", Strategy="cluster"),
                          "InvalidPlacementGroup.Duplicate", 400)
        status, root = self.pg("DescribePlacementGroups", **{"Filter.1.Name": "tag:gpumachine",
                                                             "Filter.1.Value.1": "c1"})
        self.assertEqual(find_all(root, "groupName"), ["gm-c1"])
        self.assertEqual(find_text(root, "state"), "available")
        self.assert_error(self.pg("DescribePlacementGroups", **{"GroupName.1": "nope"}),
                          "InvalidPlacementGroup.Unknown", 400)

        self.import_key()
        iid = self.launch(InstanceType="p4d.24xlarge",
                          **{"Placement.GroupName": "gm-c1",
                             "Placement.AvailabilityZone": "us-east-1a"})
        status, root = self.emu.query({"Action": "DescribeInstances",
                                       "Filter.1.Name": "placement-group-name",
                                       "Filter.1.Value.1": "gm-c1"})
        self.assertEqual(find_all(root, "instanceId"), [iid])
        self.assertIn("gm-c1", find_all(root, "groupName"))
        self.assert_error(self.pg("DeletePlacementGroup", GroupName="gm-c1"),
                          "InvalidPlacementGroup.InUse", 400)
        status, root = self.emu.query({"Action": "TerminateInstances", "InstanceId.1": iid})
        self.assertEqual(status, 200, ET.tostring(root))
        self.wait_state(iid, "terminated")
        status, root = self.pg("DeletePlacementGroup", GroupName="gm-c1")
        self.assertEqual(status, 200, ET.tostring(root))
        self.assertEqual(self.emu.state()["regions"]["us-east-1"]["placement_groups"], {})
        self.assert_error(self.pg("DeletePlacementGroup", GroupName="gm-c1"),
                          "InvalidPlacementGroup.Unknown", 400)

    def test_unknown_placement_group_launches_nothing(self):
        self.import_key()
        self.assert_error(self.emu.query(self.run_params(**{"Placement.GroupName": "nope"})),
                          "InvalidPlacementGroup.Unknown", 400)
        self.assertEqual(self.live(), [])

    def test_a_fresh_placement_group_is_not_visible_at_once(self):
        self.emu.control("config", {"consistency_delay": 1.0})
        try:
            status, _ = self.pg("CreatePlacementGroup", GroupName="gm-late", Strategy="cluster")
            self.assertEqual(status, 200)
            self.assert_error(self.pg("DescribePlacementGroups", **{"GroupName.1": "gm-late"}),
                              "InvalidPlacementGroup.Unknown", 400)
        finally:
            self.emu.control("config", {"consistency_delay": 0.0})
        status, root = self.pg("DescribePlacementGroups", **{"GroupName.1": "gm-late"})
        self.assertEqual(find_all(root, "groupName"), ["gm-late"])

    def test_n_instances_all_or_nothing(self):
        self.emu.control("config", {"capacity_limit": {"us-east-1b": {"p5.48xlarge": 3}}})
        self.import_key()
        self.pg("CreatePlacementGroup", GroupName="gm-c4", Strategy="cluster")
        ud = cloud_config(self.keys["host_priv"], self.keys["host_pub"])
        four = self.run_params(InstanceType="p5.48xlarge", MinCount="4", MaxCount="4",
                               UserData=base64.b64encode(ud.encode()).decode(),
                               **{"Placement.GroupName": "gm-c4",
                                  "Placement.AvailabilityZone": "us-east-1b"})
        self.assert_error(self.emu.query(four), "InsufficientInstanceCapacity")
        self.assertEqual(self.live(), [])
        three = dict(four, MinCount="3", MaxCount="3")
        status, root = self.emu.query(three)
        self.assertEqual(status, 200, ET.tostring(root))
        ids = find_all(root, "instanceId")
        self.assertEqual(len(ids), 3)
        # Each its own address and its own sshd.
        insts = [self.ssh_ready(iid) for iid in ids]
        self.assertEqual(len({i["publicIp"] for i in insts}), 3)
        self.assertEqual(len({i["sshd_pid"] for i in insts}), 3)
        # The same token again: the same three, nothing new.
        status, root = self.emu.query(three)
        self.assertEqual(sorted(find_all(root, "instanceId")), sorted(ids))
        self.assertEqual(len(self.live()), 3)

    def test_efa_only_where_the_type_has_it(self):
        self.import_key()
        sg = find_text(self.emu.query({"Action": "CreateSecurityGroup", "GroupName": "gm-efa",
                                       "GroupDescription": "d"})[1], "groupId")
        efa = {"NetworkInterface.1.DeviceIndex": "0", "NetworkInterface.1.InterfaceType": "efa",
               "NetworkInterface.1.SecurityGroupId.1": sg}
        self.assert_error(self.emu.query(self.run_params(InstanceType="g5.xlarge", **efa)),
                          "Unsupported", 400)
        self.assertEqual(self.live(), [])
        self.assert_error(self.emu.query(self.run_params(InstanceType="p4d.24xlarge",
                                                         SubnetId="subnet-x", **efa)),
                          "InvalidParameterCombination", 400)
        iid = self.launch(InstanceType="p4d.24xlarge", **efa)
        status, root = self.emu.query({"Action": "DescribeInstances", "InstanceId.1": iid})
        self.assertEqual(find_text(root, "interfaceType"), "efa")
        self.assertIn(sg, find_all(root, "groupId"))
        status, root = self.emu.query({"Action": "DescribeInstanceTypes",
                                       "InstanceType.1": "p4d.24xlarge",
                                       "InstanceType.2": "g5.xlarge"})
        by_type = dict(zip(find_all(root, "instanceType"), find_all(root, "efaSupported")))
        self.assertEqual(by_type, {"p4d.24xlarge": "true", "g5.xlarge": "false"})

    def test_security_group_rule_admitting_the_group_itself(self):
        sg = find_text(self.emu.query({"Action": "CreateSecurityGroup", "GroupName": "gm-self",
                                       "GroupDescription": "d"})[1], "groupId")
        status, root = self.emu.query({
            "Action": "AuthorizeSecurityGroupIngress", "GroupId": sg,
            "IpPermissions.1.IpProtocol": "-1", "IpPermissions.1.Groups.1.GroupId": sg,
            "IpPermissions.2.IpProtocol": "tcp", "IpPermissions.2.FromPort": "22",
            "IpPermissions.2.ToPort": "22", "IpPermissions.2.IpRanges.1.CidrIp": "203.0.113.5/32"})
        self.assertEqual(status, 200, ET.tostring(root))
        status, root = self.emu.query({"Action": "DescribeSecurityGroups", "GroupId.1": sg})
        perms = [p for p in root.iter() if p.tag.endswith("ipPermissions")][0]
        protocols = {find_text(item, "ipProtocol"): item
                     for item in perms if item.tag.endswith("item")}
        self.assertEqual(find_text(protocols["-1"], "groupId"), sg)
        self.assertIsNotNone(find_text(protocols["-1"], "userId"))
        self.assertEqual(find_text(protocols["tcp"], "cidrIp"), "203.0.113.5/32")
        self.assert_error(self.emu.query({
            "Action": "AuthorizeSecurityGroupIngress", "GroupId": sg,
            "IpPermissions.1.IpProtocol": "-1", "IpPermissions.1.Groups.1.GroupId": "sg-0000dead"}),
            "InvalidGroup.NotFound", 400)

    def test_private_addresses_from_a_loopback_pool(self):
        # What runs on the instances (sessions on this machine) reaches them only on loopback.
        self.emu.control("config", {"private_ip_pool": {"first": "127.9.255.1"}})
        self.import_key()
        status, root = self.emu.query(self.run_params(MinCount="2", MaxCount="2"))
        self.assertEqual(status, 200, ET.tostring(root))
        self.assertEqual(set(find_all(root, "privateIpAddress")), {"127.9.255.1", "127.9.255.2"})
