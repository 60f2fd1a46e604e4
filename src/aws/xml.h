// Reading AWS XML by LOCAL element name: EC2, STS and emulators disagree on namespaces and
// prefixes, so every lookup here ignores "prefix:" and xmlns. Also turns error bodies of every
// shape into gm::CloudError.
#pragma once

#include <pugixml.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gm/error.h"
#include "http/transport.h"

namespace gm::aws::xml {

/// \a node's name without any "prefix:".
std::string_view local_name(const pugi::xml_node& node);
/// First child element of \a parent with local name \a name (null node if none).
pugi::xml_node child(const pugi::xml_node& parent, std::string_view name);
/// All child elements of \a parent with local name \a name, in document order.
std::vector<pugi::xml_node> children(const pugi::xml_node& parent, std::string_view name);
/// Follows a '/'-separated path of local names ("instanceState/name"); null node if broken.
pugi::xml_node find(const pugi::xml_node& parent, std::string_view path);
/// Text of the element at \a path, or nullopt when it is missing.
std::optional<std::string> find_text(const pugi::xml_node& parent, std::string_view path);
/// Text of the element at \a path, or "" when it is missing.
std::string text(const pugi::xml_node& parent, std::string_view path);
/// The "<item>" children of the list element at \a path ("instancesSet").
std::vector<pugi::xml_node> items(const pugi::xml_node& parent, std::string_view path);
/// First element anywhere below \a parent with local name \a name (depth first).
pugi::xml_node descendant(const pugi::xml_node& parent, std::string_view name);

/// Parses \a body; nullopt when it is not well-formed XML.
std::optional<pugi::xml_document> parse(std::string_view body);

/// A CloudError from a failed call's response. Understands EC2's
/// <Response><Errors><Error><Code/><Message/></Error></Errors><RequestID/></Response>, the
/// IAM/STS <ErrorResponse><Error>...</Error><RequestId/></ErrorResponse>, and falls back to the
/// HTTP status text and x-amzn-requestid header for HTML or empty bodies.
CloudError parse_error(std::string_view action, int http_status, std::string_view body,
                       const http::Headers& headers);

/// "Service Unavailable" for 503 and so on; "HTTP <n>" for unknown statuses.
std::string status_text(int http_status);

}  // namespace gm::aws::xml
