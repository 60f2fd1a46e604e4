#include "aws/xml.h"

#include <gtest/gtest.h>

namespace gm::aws {
namespace {

TEST(AwsXml, ReadsByLocalNameIgnoringNamespacesAndPrefixes) {
  auto doc = xml::parse(R"(<?xml version="1.0"?>
<ec2:DescribeInstancesResponse xmlns:ec2="http://ec2.amazonaws.com/doc/2016-11-15">
  <ec2:requestId>rid-1</ec2:requestId>
  <ec2:reservationSet>
    <ec2:item><ec2:instancesSet>
      <ec2:item><ec2:instanceId>i-1</ec2:instanceId>
        <ec2:instanceState><ec2:code>16</ec2:code><ec2:name>running</ec2:name></ec2:instanceState>
        <ec2:groupSet/>
      </ec2:item>
      <ec2:item><ec2:instanceId>i-2</ec2:instanceId></ec2:item>
    </ec2:instancesSet></ec2:item>
  </ec2:reservationSet>
</ec2:DescribeInstancesResponse>)");
  ASSERT_TRUE(doc.has_value());
  pugi::xml_node root = doc->document_element();
  EXPECT_EQ(xml::local_name(root), "DescribeInstancesResponse");
  EXPECT_EQ(xml::text(root, "requestId"), "rid-1");
  auto reservations = xml::items(root, "reservationSet");
  ASSERT_EQ(reservations.size(), 1u);
  auto instances = xml::items(reservations[0], "instancesSet");
  ASSERT_EQ(instances.size(), 2u);
  EXPECT_EQ(xml::text(instances[0], "instanceState/name"), "running");
  EXPECT_EQ(xml::text(instances[1], "instanceId"), "i-2");
  EXPECT_TRUE(xml::items(instances[0], "groupSet").empty());
  EXPECT_FALSE(xml::find_text(instances[1], "ipAddress").has_value());
  EXPECT_EQ(xml::text(instances[1], "ipAddress"), "");
  EXPECT_EQ(xml::text(xml::descendant(root, "instanceState"), "code"), "16");
}

TEST(AwsXml, Ec2ErrorEnvelope) {
  CloudError e = xml::parse_error("RunInstances", 503,
                                  R"(<?xml version="1.0" encoding="UTF-8"?>
<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message></Error>
<Error><Code>Second</Code></Error></Errors><RequestID>ec2-rid</RequestID></Response>)",
                                  {{"x-amzn-requestid", "header-rid"}});
  EXPECT_EQ(e.action(), "RunInstances");
  EXPECT_EQ(e.http_status(), 503);
  EXPECT_EQ(e.code(), "RequestLimitExceeded");
  EXPECT_EQ(e.message(), "Request limit exceeded.");
  EXPECT_EQ(e.request_id(), "ec2-rid");  // the body's id wins over the header's
  EXPECT_NE(std::string(e.what()).find("RunInstances"), std::string::npos);
}

TEST(AwsXml, IamStsErrorEnvelopeWithNamespace) {
  CloudError e =
      xml::parse_error("AssumeRole", 403,
                       R"(<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <Error><Type>Sender</Type><Code>AccessDenied</Code><Message>not authorized</Message></Error>
  <RequestId>sts-rid</RequestId></ErrorResponse>)",
                       {});
  EXPECT_EQ(e.code(), "AccessDenied");
  EXPECT_EQ(e.message(), "not authorized");
  EXPECT_EQ(e.request_id(), "sts-rid");
  EXPECT_NE(e.hint().find("AssumeRole"), std::string::npos);
}

TEST(AwsXml, HtmlAndEmptyBodiesFallBackToStatusAndHeader) {
  CloudError html = xml::parse_error("DescribeInstances", 502,
                                     "<html><body><h1>502 Bad Gateway</h1><hr></body></html>",
                                     {{"X-Amzn-RequestId", "hdr-rid"}});
  EXPECT_EQ(html.code(), "");
  EXPECT_EQ(html.message(), "Bad Gateway");
  EXPECT_EQ(html.request_id(), "hdr-rid");

  CloudError broken = xml::parse_error("DescribeInstances", 503, "<html><body>oops", {});
  EXPECT_EQ(broken.message(), "Service Unavailable");

  CloudError empty = xml::parse_error("TerminateInstances", 500, "", {});
  EXPECT_EQ(empty.http_status(), 500);
  EXPECT_EQ(empty.message(), "Internal Server Error");
  EXPECT_EQ(empty.request_id(), "");
}

TEST(AwsXml, AuthFailureGetsACredentialsHint) {
  CloudError e = xml::parse_error(
      "DescribeRegions", 401,
      "<Response><Errors><Error><Code>AuthFailure</Code><Message>AWS was not able to validate "
      "the provided access credentials</Message></Error></Errors><RequestID>r</RequestID>"
      "</Response>",
      {});
  EXPECT_EQ(e.code(), "AuthFailure");
  EXPECT_NE(e.hint().find("clock"), std::string::npos);
}

}  // namespace
}  // namespace gm::aws
