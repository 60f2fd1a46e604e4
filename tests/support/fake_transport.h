// A scripted Transport: answers each send() with the next queued response or TransportError and
// records every request it saw.
#pragma once

#include <deque>
#include <variant>
#include <vector>

#include "http/transport.h"

namespace gm::test {

class FakeTransport : public http::Transport {
 public:
  using Step = std::variant<http::Response, http::TransportError>;

  /// Queues a response with \a status, \a body and optional headers.
  void push(int status, std::string body = {}, http::Headers headers = {}) {
    m_steps.emplace_back(http::Response{status, std::move(headers), std::move(body)});
  }
  /// Queues a connection-level failure.
  void push_error(http::TransportError::Kind kind, std::string text = "fake failure") {
    m_steps.emplace_back(http::TransportError(kind, "http://fake", text));
  }

  http::Response send(const http::Request& request) override {
    requests.push_back(request);
    if (m_steps.empty()) {
      return http::Response{500, {}, "fake transport: nothing queued"};
    }
    Step step = std::move(m_steps.front());
    m_steps.pop_front();
    if (auto* error = std::get_if<http::TransportError>(&step)) {
      throw *error;
    }
    return std::get<http::Response>(std::move(step));
  }

  std::vector<http::Request> requests;

 private:
  std::deque<Step> m_steps;
};

}  // namespace gm::test
