#!/usr/bin/env python3
"""A hostile SFTP (version 3) server for tests: sshd runs it as its sftp subsystem
(`Subsystem sftp /usr/bin/python3 lying_sftp.py TREE.json`) and it serves a made-up tree in
which a directory may list names no honest server sends ("../x", "/abs/path", "a/b", ".").

TREE.json maps exact request paths to nodes: {"dir": [names]} or {"file": "content"}. Every
path the client asks about (STAT, LSTAT, OPENDIR, OPEN) is looked up as the exact string it
sends, so the tree says what each lie leads to. Standard library only; the protocol is
draft-ietf-secsh-filexfer-02 (what OpenSSH and libssh2 speak).
"""
import json
import struct
import sys

FXP_INIT, FXP_VERSION = 1, 2
FXP_OPEN, FXP_CLOSE, FXP_READ = 3, 4, 5
FXP_LSTAT, FXP_FSTAT, FXP_OPENDIR, FXP_READDIR = 7, 8, 11, 12
FXP_REALPATH, FXP_STAT = 16, 17
FXP_STATUS, FXP_HANDLE, FXP_DATA, FXP_NAME, FXP_ATTRS = 101, 102, 103, 104, 105
FX_OK, FX_EOF, FX_NO_SUCH_FILE, FX_OP_UNSUPPORTED = 0, 1, 2, 8
ATTR_SIZE, ATTR_PERMISSIONS = 0x1, 0x4


def string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


class Reader:
    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def u32(self) -> int:
        (value,) = struct.unpack_from(">I", self.data, self.pos)
        self.pos += 4
        return value

    def u64(self) -> int:
        (value,) = struct.unpack_from(">Q", self.data, self.pos)
        self.pos += 8
        return value

    def string(self) -> bytes:
        size = self.u32()
        value = self.data[self.pos:self.pos + size]
        self.pos += size
        return value


def read_exact(size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sys.stdin.buffer.read(size - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def send(kind: int, payload: bytes) -> None:
    sys.stdout.buffer.write(struct.pack(">IB", len(payload) + 1, kind) + payload)
    sys.stdout.buffer.flush()


def attrs(node: dict) -> bytes:
    if "dir" in node:
        return struct.pack(">II", ATTR_PERMISSIONS, 0o40755)
    size = len(node["file"].encode())
    return struct.pack(">IQI", ATTR_SIZE | ATTR_PERMISSIONS, size, 0o100644)


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as fh:
        tree = json.load(fh)
    handles: dict[bytes, dict] = {}
    serial = 0

    def status(rid: int, code: int) -> None:
        send(FXP_STATUS, struct.pack(">II", rid, code) + string(b"") + string(b""))

    while True:
        try:
            (length,) = struct.unpack(">I", read_exact(4))
            packet = read_exact(length)
        except EOFError:
            return
        kind, body = packet[0], Reader(packet[1:])
        if kind == FXP_INIT:
            send(FXP_VERSION, struct.pack(">I", 3))
            continue
        rid = body.u32()
        if kind == FXP_REALPATH:
            path = body.string()
            send(FXP_NAME, struct.pack(">II", rid, 1) + string(path) + string(path) +
                 struct.pack(">I", 0))
        elif kind in (FXP_STAT, FXP_LSTAT, FXP_OPENDIR, FXP_OPEN):
            path = body.string().decode("utf-8", "surrogateescape")
            node = tree.get(path)
            if node is None:
                status(rid, FX_NO_SUCH_FILE)
            elif kind in (FXP_STAT, FXP_LSTAT):
                send(FXP_ATTRS, struct.pack(">I", rid) + attrs(node))
            else:
                serial += 1
                handle = str(serial).encode()
                handles[handle] = {"node": node, "listed": False}
                send(FXP_HANDLE, struct.pack(">I", rid) + string(handle))
        elif kind == FXP_READDIR:
            state = handles.get(body.string())
            if state is None or state["listed"] or "dir" not in state["node"]:
                status(rid, FX_EOF)
                continue
            state["listed"] = True
            names = state["node"]["dir"]
            entries = b"".join(string(n.encode()) + string(n.encode()) + struct.pack(">I", 0)
                               for n in names)
            send(FXP_NAME, struct.pack(">II", rid, len(names)) + entries)
        elif kind == FXP_READ:
            state = handles.get(body.string())
            offset, size = body.u64(), body.u32()
            content = state["node"].get("file", "").encode() if state else b""
            if offset >= len(content):
                status(rid, FX_EOF)
            else:
                send(FXP_DATA, struct.pack(">I", rid) + string(content[offset:offset + size]))
        elif kind == FXP_FSTAT:
            state = handles.get(body.string())
            if state is None:
                status(rid, FX_NO_SUCH_FILE)
            else:
                send(FXP_ATTRS, struct.pack(">I", rid) + attrs(state["node"]))
        elif kind == FXP_CLOSE:
            handles.pop(body.string(), None)
            status(rid, FX_OK)
        else:
            status(rid, FX_OP_UNSUPPORTED)


if __name__ == "__main__":
    main()
