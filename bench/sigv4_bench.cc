// SigV4 signing of a typical EC2 Query API call (DescribeInstances with filters): the per-call
// cost every API request pays before it goes on the wire.
#include "aws/credentials.h"
#include "aws/sigv4.h"

#include <benchmark/benchmark.h>

namespace {

void BM_SignDescribeInstances(benchmark::State& state) {
  gm::aws::Credentials creds;
  creds.access_key_id = "AKIDEXAMPLE";  // AWS's documented example key, not a credential
  creds.secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
  std::string body =
      "Action=DescribeInstances&Version=2016-11-15&Filter.1.Name=tag%3Agpumachine%3Aid"
      "&Filter.1.Value.1=0b6c2f1e-6f0e-4a57-9a43-2f5d7c1b9e10&MaxResults=1000";
  auto now = std::chrono::system_clock::now();
  for (auto _ : state) {
    gm::aws::SignableRequest request;
    request.host = "ec2.us-east-1.amazonaws.com";
    request.headers = {{"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"}};
    request.payload = body;
    benchmark::DoNotOptimize(gm::aws::sign(request, creds, "us-east-1", "ec2", now));
  }
}
BENCHMARK(BM_SignDescribeInstances);

}  // namespace

BENCHMARK_MAIN();
