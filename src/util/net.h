// Small network helpers that know nothing about SSH or clouds.
#pragma once

#include <chrono>
#include <string>
#include <utility>
#include <vector>

namespace gm::util {

/// For each host:port, whether a TCP connection is accepted within timeout. Endpoints are tried
/// together (non-blocking connects and one poll loop), so 200 hosts cost one timeout, with at
/// most 64 connections in flight to one host:port (256 overall) so that many machines behind one
/// address never overflow its server's queue of pending connections.
std::vector<bool> tcp_reachable(const std::vector<std::pair<std::string, int>>& endpoints,
                                std::chrono::milliseconds timeout);

/// True for 127.0.0.0/8, ::1 and "localhost".
bool is_loopback_host(const std::string& host);

}  // namespace gm::util
