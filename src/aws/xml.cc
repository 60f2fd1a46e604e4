#include "aws/xml.h"

#include <algorithm>
#include <cctype>

namespace gm::aws::xml {

std::string_view local_name(const pugi::xml_node& node) {
  std::string_view name = node.name();
  std::size_t colon = name.find(':');
  return colon == std::string_view::npos ? name : name.substr(colon + 1);
}

pugi::xml_node child(const pugi::xml_node& parent, std::string_view name) {
  for (pugi::xml_node node = parent.first_child(); node; node = node.next_sibling()) {
    if (node.type() == pugi::node_element && local_name(node) == name) {
      return node;
    }
  }
  return {};
}

std::vector<pugi::xml_node> children(const pugi::xml_node& parent, std::string_view name) {
  std::vector<pugi::xml_node> out;
  for (pugi::xml_node node = parent.first_child(); node; node = node.next_sibling()) {
    if (node.type() == pugi::node_element && local_name(node) == name) {
      out.push_back(node);
    }
  }
  return out;
}

pugi::xml_node find(const pugi::xml_node& parent, std::string_view path) {
  pugi::xml_node node = parent;
  while (node && !path.empty()) {
    std::size_t slash = path.find('/');
    node = child(node, path.substr(0, slash));
    path = slash == std::string_view::npos ? std::string_view{} : path.substr(slash + 1);
  }
  return node;
}

std::optional<std::string> find_text(const pugi::xml_node& parent, std::string_view path) {
  pugi::xml_node node = find(parent, path);
  if (!node) {
    return std::nullopt;
  }
  return std::string(node.text().get());
}

std::string text(const pugi::xml_node& parent, std::string_view path) {
  return find_text(parent, path).value_or("");
}

std::vector<pugi::xml_node> items(const pugi::xml_node& parent, std::string_view path) {
  pugi::xml_node list = find(parent, path);
  return list ? children(list, "item") : std::vector<pugi::xml_node>{};
}

pugi::xml_node descendant(const pugi::xml_node& parent, std::string_view name) {
  for (pugi::xml_node node = parent.first_child(); node; node = node.next_sibling()) {
    if (node.type() != pugi::node_element) {
      continue;
    }
    if (local_name(node) == name) {
      return node;
    }
    if (pugi::xml_node found = descendant(node, name)) {
      return found;
    }
  }
  return {};
}

std::optional<pugi::xml_document> parse(std::string_view body) {
  pugi::xml_document doc;
  pugi::xml_parse_result result = doc.load_buffer(body.data(), body.size());
  if (!result || !doc.document_element()) {
    return std::nullopt;
  }
  return doc;
}

std::string status_text(int http_status) {
  switch (http_status) {
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 412:
      return "Precondition Failed";
    case 413:
      return "Payload Too Large";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "HTTP " + std::to_string(http_status);
  }
}

CloudError parse_error(std::string_view action, int http_status, std::string_view body,
                       const http::Headers& headers) {
  std::string request_id;
  for (const auto& [name, value] : headers) {
    std::string lower(name);
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (lower == "x-amzn-requestid" || lower == "x-amz-request-id") {
      request_id = value;
      break;
    }
  }
  std::string code;
  std::string message;
  if (auto doc = parse(body)) {
    pugi::xml_node root = doc->document_element();
    // EC2: Response/Errors/Error (+ RequestID); IAM/STS: ErrorResponse/Error (+ RequestId).
    // Several <Error>s may come back; the first is the cause.
    pugi::xml_node error = find(root, "Errors/Error");
    if (!error) {
      error = child(root, "Error");
    }
    if (!error && local_name(root) == "Error") {
      error = root;  // S3-style bare <Error>, seen from some proxies and emulators
    }
    if (error) {
      code = text(error, "Code");
      message = text(error, "Message");
    }
    for (std::string_view tag : {"RequestID", "RequestId", "requestId"}) {
      if (auto id = find_text(root, tag); id && !id->empty()) {
        request_id = *id;
        break;
      }
    }
  }
  if (code.empty() && message.empty()) {
    // HTML from a proxy, an empty 5xx: all we have is the status line.
    message = status_text(http_status);
  }
  std::string hint;
  if (code == "AuthFailure" || code == "SignatureDoesNotMatch" || code == "RequestExpired" ||
      code == "InvalidClientTokenId" || code == "InvalidSecurity.RequestHasExpired") {
    hint = "check the AWS credentials in use and that the system clock is correct";
  } else if (code == "UnauthorizedOperation" || code == "AccessDenied" ||
             code == "AccessDeniedException") {
    hint = "the IAM identity in use lacks permission for " + std::string(action);
  } else if (http_status >= 500) {
    hint = "the service failed on its side; try again in a few minutes";
  } else {
    hint = "what " + (code.empty() ? std::string("the error") : code) +
           " means: https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html";
  }
  return CloudError(std::string(action), http_status, std::move(code), std::move(message),
                    std::move(request_id), std::move(hint));
}

}  // namespace gm::aws::xml
