#include "util/shell.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <string>

namespace gm::util {
namespace {

/// What a real /bin/sh makes of `printf %s <quoted>`: the word it received.
std::string through_sh(const std::string& word) {
  std::string command = "printf %s " + shell_quote(word);
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) {
    ADD_FAILURE() << "popen failed";
    return {};
  }
  std::string out;
  std::array<char, 256> buffer{};
  std::size_t n = 0;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0) {
    out.append(buffer.data(), n);
  }
  EXPECT_EQ(::pclose(pipe), 0) << command;
  return out;
}

TEST(ShellQuote, HostileWordsArriveUnchanged) {
  for (const std::string word :
       {"", "plain", "two words", "it's", "'", "''", "\"double\"", "line\nbreak", "$(touch /x)",
        "`id`", "$HOME", "a;b|c&d", "*?[x]", "\\", "-n", "tab\there", "~", "A=b", "#comment"}) {
    EXPECT_EQ(through_sh(word), word) << shell_quote(word);
  }
}

TEST(ShellQuote, SingleQuotesEveryWord) {
  EXPECT_EQ(shell_quote(""), "''");
  EXPECT_EQ(shell_quote("plain"), "'plain'");
  EXPECT_EQ(shell_quote("it's"), "'it'\\''s'");
}

}  // namespace
}  // namespace gm::util
