"""Wire helpers shared by the EC2, SSM and STS front ends.

* ``ApiError``: an error that the handler turns into the service's error envelope.
* ``Params``: the flattened Query-protocol parameters (``Name.N.Sub``) with typed getters.
* ``to_xml``: renders nested dicts/lists as EC2-style XML (lists become ``<item>`` children).
"""
from __future__ import annotations

import fnmatch
import re
from typing import Any, Iterable
from xml.sax.saxutils import escape

EC2_NS = "http://ec2.amazonaws.com/doc/2016-11-15/"

# HTTP status per error code; anything not listed is a client error (400).
_STATUS = {
    "AuthFailure": 401,
    "MissingAuthenticationToken": 401,
    "SignatureDoesNotMatch": 403,
    "UnauthorizedOperation": 403,
    "InvalidClientTokenId": 403,
    "AccessDenied": 403,
    "DryRunOperation": 412,
    "RequestLimitExceeded": 503,
    "Unavailable": 503,
    "ServiceUnavailable": 503,
    "InternalError": 500,
    "InternalFailure": 500,
    "ServerInternal": 500,
    "InsufficientInstanceCapacity": 500,
    "InsufficientAddressCapacity": 500,
    "InsufficientHostCapacity": 500,
    "InsufficientVolumeCapacity": 500,
}


def status_for(code: str) -> int:
    return _STATUS.get(code, 400)


class ApiError(Exception):
    """An API error: code, message and HTTP status (derived from the code unless given)."""

    def __init__(self, code: str, message: str = "", status: int | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message or code
        self.status = status if status is not None else status_for(code)


_INDEX = re.compile(r"^(\d+)$")


class Params:
    """Flattened Query parameters, e.g. ``TagSpecification.1.Tag.2.Key``."""

    def __init__(self, items: dict[str, str], prefix: str = "") -> None:
        self._items = items
        self._prefix = prefix

    # -- raw access ---------------------------------------------------
    def raw(self) -> dict[str, str]:
        p = self._prefix
        return {k[len(p):]: v for k, v in self._items.items() if k.startswith(p)}

    def has(self, name: str) -> bool:
        full = self._prefix + name
        return any(k == full or k.startswith(full + ".") for k in self._items)

    def get(self, name: str, default: str | None = None) -> str | None:
        return self._items.get(self._prefix + name, default)

    def require(self, name: str) -> str:
        value = self.get(name)
        if value is None or value == "":
            raise ApiError("MissingParameter",
                           f"The request must contain the parameter {name}")
        return value

    # -- typed getters ------------------------------------------------
    def get_int(self, name: str, default: int | None = None,
                lo: int | None = None, hi: int | None = None) -> int | None:
        value = self.get(name)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            raise ApiError("InvalidParameterValue",
                           f"Value ({value}) for parameter {name} is invalid. "
                           "Expected an integer.") from None
        if (lo is not None and number < lo) or (hi is not None and number > hi):
            raise ApiError("InvalidParameterValue",
                           f"Value ({value}) for parameter {name} is invalid. "
                           f"Must be between {lo} and {hi}.")
        return number

    def get_bool(self, name: str, default: bool | None = None) -> bool | None:
        value = self.get(name)
        if value is None:
            return default
        low = value.lower()
        if low not in ("true", "false"):
            raise ApiError("InvalidParameterValue",
                           f"Value ({value}) for parameter {name} is invalid. "
                           "Expected: 'true' or 'false'.")
        return low == "true"

    def get_enum(self, name: str, allowed: Iterable[str],
                 default: str | None = None) -> str | None:
        value = self.get(name)
        if value is None:
            return default
        allowed = list(allowed)
        if value not in allowed:
            raise ApiError("InvalidParameterValue",
                           f"Value ({value}) for parameter {name} is invalid. "
                           f"Allowed values: {', '.join(allowed)}")
        return value

    # -- lists ----------------------------------------------------------
    def _indices(self, name: str) -> list[int]:
        full = self._prefix + name + "."
        found: set[int] = set()
        for key in self._items:
            if key.startswith(full):
                head = key[len(full):].split(".", 1)[0]
                if _INDEX.match(head):
                    found.add(int(head))
        return sorted(found)

    def get_list(self, name: str) -> list[str]:
        """Scalar list ``Name.1``, ``Name.2`` ... in index order."""
        out = []
        for i in self._indices(name):
            value = self.get(f"{name}.{i}")
            if value is not None:
                out.append(value)
        return out

    def get_structs(self, name: str) -> list["Params"]:
        """Structure list ``Name.N.Member`` as sub-``Params`` in index order."""
        return [Params(self._items, f"{self._prefix}{name}.{i}.") for i in self._indices(name)]

    def sub(self, name: str) -> "Params":
        return Params(self._items, f"{self._prefix}{name}.")

    def roots(self) -> set[str]:
        """Top-level parameter names (before the first dot)."""
        return {k.split(".", 1)[0] for k in self._items}


def check_known(params: Params, allowed: Iterable[str]) -> None:
    """EC2 rejects unknown top-level parameters with ``UnknownParameter``."""
    base = {"Action", "Version", "DryRun"}
    allowed_set = base | set(allowed)
    for root in sorted(params.roots()):
        if root in allowed_set or root.startswith("X-Amz-"):
            continue
        raise ApiError("UnknownParameter", f"The parameter {root} is not recognized")


MAX_FILTER_VALUES = 200


def parse_filters(params: Params) -> list[tuple[str, list[str]]]:
    filters = []
    for f in params.get_structs("Filter"):
        name = f.get("Name")
        if not name:
            raise ApiError("InvalidParameterValue", "The filter name must be specified")
        filters.append((name, f.get_list("Value")))
    # EC2 caps the filter values of one call at 200 (all filters together).
    if sum(len(values) for _, values in filters) > MAX_FILTER_VALUES:
        raise ApiError("FilterLimitExceeded", "The maximum number of filter values specified on "
                       f"a single call is {MAX_FILTER_VALUES}")
    return filters


def glob_match(pattern: str, value: str) -> bool:
    """EC2 filter matching: ``*`` and ``?`` wildcards, case-sensitive."""
    return fnmatch.fnmatchcase(value, pattern)


def any_match(patterns: list[str], values: Iterable[str]) -> bool:
    vals = list(values)
    return any(glob_match(p, v) for p in patterns for v in vals)


def parse_tags(params: Params, name: str = "Tag") -> list[tuple[str, str]]:
    tags = []
    for t in params.get_structs(name):
        key = t.get("Key")
        if key is None or key == "":
            raise ApiError("InvalidParameterValue", "Tag key must be specified")
        value = t.get("Value", "") or ""
        validate_tag(key, value)
        tags.append((key, value))
    if len(tags) > 50:
        raise ApiError("TagLimitExceeded", "The maximum number of tags per resource is 50")
    return tags


def validate_tag(key: str, value: str) -> None:
    if len(key) > 128:
        raise ApiError("InvalidParameterValue",
                       "Tag key exceeds the maximum length of 128 characters")
    if len(value) > 256:
        raise ApiError("InvalidParameterValue",
                       "Tag value exceeds the maximum length of 256 characters")
    if key.lower().startswith("aws:"):
        raise ApiError("InvalidParameterValue",
                       "Tag keys starting with 'aws:' are reserved for internal use")


# -- XML ------------------------------------------------------------------
def _render(tag: str, value: Any, out: list[str]) -> None:
    if value is None:
        return
    if isinstance(value, dict):
        out.append(f"<{tag}>")
        for k, v in value.items():
            _render(k, v, out)
        out.append(f"</{tag}>")
    elif isinstance(value, list):
        if not value:
            out.append(f"<{tag}/>")
            return
        out.append(f"<{tag}>")
        for item in value:
            _render("item", item, out)
        out.append(f"</{tag}>")
    elif isinstance(value, bool):
        out.append(f"<{tag}>{'true' if value else 'false'}</{tag}>")
    else:
        out.append(f"<{tag}>{escape(str(value))}</{tag}>")


def to_xml(root: str, body: dict[str, Any], ns: str = EC2_NS) -> bytes:
    out = ['<?xml version="1.0" encoding="UTF-8"?>', f'<{root} xmlns="{ns}">']
    for k, v in body.items():
        _render(k, v, out)
    out.append(f"</{root}>")
    return "".join(out).encode()


def ec2_error_xml(code: str, message: str, request_id: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Response><Errors><Error><Code>{escape(code)}</Code>"
        f"<Message>{escape(message)}</Message></Error></Errors>"
        f"<RequestID>{escape(request_id)}</RequestID></Response>"
    ).encode()


def tag_set(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in tags.items()]
