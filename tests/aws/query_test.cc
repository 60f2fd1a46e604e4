#include "aws/query.h"

#include <gtest/gtest.h>

namespace gm::aws {
namespace {

TEST(AwsQuery, EncodesRunInstancesLikeBotocore) {
  QueryParams params;
  params.set("ImageId", "ami-1")
      .set("InstanceType", "g5.xlarge")
      .set("MinCount", 1)
      .set("MaxCount", 1)
      .set_list("SecurityGroupId", {"sg-1"})
      .set("BlockDeviceMapping.1.DeviceName", "/dev/sda1")
      .set("BlockDeviceMapping.1.Ebs.DeleteOnTermination", true);
  params.add_tag_specification("instance", {{"Name", "a b"}, {"gpumachine", "x+y"}});
  params.add_tag_specification("volume", {{"Name", "a"}});
  EXPECT_EQ(encode_query_body("RunInstances", "2016-11-15", params),
            "Action=RunInstances&Version=2016-11-15&ImageId=ami-1&InstanceType=g5.xlarge"
            "&MinCount=1&MaxCount=1&SecurityGroupId.1=sg-1"
            "&BlockDeviceMapping.1.DeviceName=%2Fdev%2Fsda1"
            "&BlockDeviceMapping.1.Ebs.DeleteOnTermination=true"
            "&TagSpecification.1.ResourceType=instance&TagSpecification.1.Tag.1.Key=Name"
            "&TagSpecification.1.Tag.1.Value=a%20b&TagSpecification.1.Tag.2.Key=gpumachine"
            "&TagSpecification.1.Tag.2.Value=x%2By"
            "&TagSpecification.2.ResourceType=volume&TagSpecification.2.Tag.1.Key=Name"
            "&TagSpecification.2.Tag.1.Value=a");
}

TEST(AwsQuery, FiltersAndIndexes) {
  QueryParams params;
  params.set_list("Owner", {"099720109477"});
  params.add_filter("name", {"ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*"});
  params.add_filter("instance-state-name", {"pending", "running"});
  EXPECT_EQ(encode_query_body("DescribeImages", "2016-11-15", params),
            "Action=DescribeImages&Version=2016-11-15&Owner.1=099720109477&Filter.1.Name=name"
            "&Filter.1.Value.1=ubuntu%2Fimages%2Fhvm-ssd-gp3%2Fubuntu-noble-24.04-amd64-server-%2A"
            "&Filter.2.Name=instance-state-name&Filter.2.Value.1=pending"
            "&Filter.2.Value.2=running");
  EXPECT_EQ(params.next_index("Filter"), 3);
  EXPECT_EQ(params.next_index("IpPermissions"), 1);
  EXPECT_EQ(member(member("IpPermissions", 1, "IpRanges"), 2, "CidrIp"),
            "IpPermissions.1.IpRanges.2.CidrIp");
}

TEST(AwsQuery, SetReplacesAndFindLooksUp) {
  QueryParams params;
  params.set("ClientToken", "a").set("ClientToken", "b").set("DryRun", false);
  ASSERT_NE(params.find("ClientToken"), nullptr);
  EXPECT_EQ(*params.find("ClientToken"), "b");
  EXPECT_EQ(params.find("Missing"), nullptr);
  EXPECT_EQ(params.items().size(), 2u);
  EXPECT_EQ(encode_query_body("X", "1", params), "Action=X&Version=1&ClientToken=b&DryRun=false");
}

}  // namespace
}  // namespace gm::aws
