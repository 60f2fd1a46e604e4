// The pure parts of `run`: the job list job.sh prints, the job's environment, the project's name
// and image tag, and the paths results may come back to.
#include "gm/error.h"
#include "run/job_env.h"
#include "run/jobs.h"
#include "run/project.h"
#include "support/process.h"
#include "support/scoped_env.h"
#include "util/time.h"

#include <gtest/gtest.h>

namespace gm::run {
namespace {

TEST(RunJobs, ParsesTheListNewestFirstAndSkipsNoise) {
  std::vector<JobInfo> jobs = parse_job_list(
      "aaaa1111\texited\t7\t2026-12-07T20:56:47.0009Z\t2026-12-07T20:57:52.1Z\t\"exit 7\"\n"
      "garbage line\n"
      "bbbb2222\trunning\t0\t2026-12-07T21:00:00.5Z\t0001-01-01T00:00:00Z\t\"python "
      "\\\"a\\tb\\\"\"\n");
  ASSERT_EQ(jobs.size(), 2U);
  EXPECT_EQ(jobs[0].id, "bbbb2222");
  EXPECT_TRUE(jobs[0].running());
  EXPECT_EQ(jobs[0].command, "python \"a\tb\"");
  EXPECT_EQ(jobs[1].exit_code, 7);
  EXPECT_FALSE(jobs[1].running());
  EXPECT_EQ(job_duration(jobs[1]), util::human_duration(std::chrono::seconds(65)));
}

TEST(RunJobs, PublishedPortsAreTheTcpHostPortsEachOnce) {
  EXPECT_EQ(parse_published_ports("0.0.0.0:8888->8888/tcp, :::8888->8888/tcp\n"
                                  "127.0.0.1:6006->6006/tcp, 127.0.0.1:5353->53/udp\n"
                                  "8080/tcp\n\n"),
            (std::vector<int>{6006, 8888}));
}

TEST(RunJobEnv, FilesThenFlagsWithValuesFromHere) {
  testing::TempDir dir;
  testing::write_text(dir / "env", "# comment\n\nA=from-file\nB=b=c\n  C=spaced\n");
  test::EnvVar local("GM_RUN_TEST_TOKEN", "s3cret");
  EXPECT_EQ(job_env({"A=flag", "GM_RUN_TEST_TOKEN"}, {(dir / "env").string()}),
            "A=flag\nB=b=c\nC=spaced\nGM_RUN_TEST_TOKEN=s3cret\n");
}

TEST(RunJobEnv, BadSettingsAreUsageErrors) {
  EXPECT_THROW(job_env({"1A=x"}, {}), UsageError);
  EXPECT_THROW(job_env({"A-B=x"}, {}), UsageError);
  EXPECT_THROW(job_env({"GM_RUN_TEST_SURELY_UNSET"}, {}), UsageError);
  EXPECT_THROW(job_env({"A=two\nlines"}, {}), UsageError);
  EXPECT_THROW(job_env({}, {"/nonexistent/env"}), UsageError);
}

TEST(RunProject, NameTagAndResultPaths) {
  testing::TempDir dir;
  std::filesystem::create_directories(dir / "My Project");
  Project p = open_project(dir / "My Project");
  EXPECT_EQ(p.remote_name.rfind("My Project-", 0), 0U) << p.remote_name;
  EXPECT_EQ(p.remote_name.size(), std::string("My Project-").size() + 8);
  EXPECT_EQ(p.image_tag, "gpumachine/my-project:latest");
  EXPECT_FALSE(p.has_dockerfile);
  EXPECT_THROW(open_project(dir / "missing"), UsageError);
  EXPECT_NO_THROW(check_relative("results/sub", "--download"));
  EXPECT_THROW(check_relative("/etc", "--download"), UsageError);
  EXPECT_THROW(check_relative("results/../../x", "--download"), UsageError);
  EXPECT_THROW(check_relative("", "--download"), UsageError);
}

}  // namespace
}  // namespace gm::run
