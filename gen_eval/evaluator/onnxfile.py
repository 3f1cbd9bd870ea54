"""Reading an untrusted ONNX file before onnxruntime sees it (torch-free, no ``onnx`` package needed).

A tensor may keep its bytes in an external file named by a ``location`` string in the model. Given a
model's bytes, onnxruntime resolves such locations against the *current directory*; given its path,
against the model's folder, following ``..``, absolute paths and symbolic links. So every location is
found here (a minimal protobuf walk over ModelProto: initializers, sparse initializers, Constant and
other node attributes, subgraphs and functions) and must name a regular file inside the model's own
folder; only then does onnxruntime load the model, by its path.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path, PurePosixPath

from gen_eval.errors import UserError
from gen_eval.inputfiles import file_kind

# ONNX's protobuf field numbers (onnx.proto3)
MODEL_GRAPH, MODEL_FUNCTIONS = 7, 25
GRAPH_NODE, GRAPH_INITIALIZER, GRAPH_SPARSE_INITIALIZER = 1, 5, 15
NODE_ATTRIBUTE = 5
ATTR_T, ATTR_G, ATTR_TENSORS, ATTR_GRAPHS, ATTR_SPARSE, ATTR_SPARSES = 5, 6, 10, 11, 22, 23
FUNCTION_NODE = 7
TENSOR_EXTERNAL_DATA, TENSOR_DATA_LOCATION = 13, 14
SPARSE_VALUES, SPARSE_INDICES = 1, 2
ENTRY_KEY, ENTRY_VALUE = 1, 2
EXTERNAL = 1
MAX_DEPTH = 64


class _Malformed(Exception):
    pass


def _varint(data: memoryview, pos: int) -> tuple[int, int]:
    result, shift = 0, 0
    while True:
        if pos >= len(data) or shift > 63:
            raise _Malformed("bad varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(data: memoryview):
    """(field number, wire type, value) of one message; value is an int or a memoryview."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 1:
            value, pos = None, pos + 8
        elif wire == 5:
            value, pos = None, pos + 4
        elif wire == 2:
            length, pos = _varint(data, pos)
            value, pos = data[pos : pos + length], pos + length
        else:
            raise _Malformed(f"unsupported wire type {wire}")
        if pos > len(data):
            raise _Malformed("truncated field")
        yield number, wire, value


def _tensor(data: memoryview, found: list[str]) -> None:
    external, location = False, None
    for number, wire, value in _fields(data):
        if number == TENSOR_DATA_LOCATION and wire == 0:
            external = value == EXTERNAL
        elif number == TENSOR_EXTERNAL_DATA and wire == 2:
            key = entry = None
            for n, w, v in _fields(value):
                if n == ENTRY_KEY and w == 2:
                    key = bytes(v)
                elif n == ENTRY_VALUE and w == 2:
                    entry = bytes(v)
            if key == b"location":
                location = entry
    if external or location is not None:
        if location is None:
            raise _Malformed("an external tensor without a location")
        try:
            found.append(location.decode("utf-8"))
        except UnicodeDecodeError:
            raise _Malformed("an external data location that is not UTF-8") from None


def _sparse(data: memoryview, found: list[str]) -> None:
    for number, wire, value in _fields(data):
        if number in (SPARSE_VALUES, SPARSE_INDICES) and wire == 2:
            _tensor(value, found)


def _nodes_attribute(data: memoryview, found: list[str], depth: int) -> None:
    for number, wire, value in _fields(data):
        if wire != 2:
            continue
        if number in (ATTR_T, ATTR_TENSORS):
            _tensor(value, found)
        elif number in (ATTR_G, ATTR_GRAPHS):
            _graph(value, found, depth + 1)
        elif number in (ATTR_SPARSE, ATTR_SPARSES):
            _sparse(value, found)


def _node(data: memoryview, found: list[str], depth: int) -> None:
    for number, wire, value in _fields(data):
        if number == NODE_ATTRIBUTE and wire == 2:
            _nodes_attribute(value, found, depth)


def _graph(data: memoryview, found: list[str], depth: int) -> None:
    if depth > MAX_DEPTH:
        raise _Malformed(f"subgraphs nested over {MAX_DEPTH} deep")
    for number, wire, value in _fields(data):
        if wire != 2:
            continue
        if number == GRAPH_NODE:
            _node(value, found, depth)
        elif number == GRAPH_INITIALIZER:
            _tensor(value, found)
        elif number == GRAPH_SPARSE_INITIALIZER:
            _sparse(value, found)


def external_data_locations(model_bytes: bytes) -> list[str]:
    """Every external-data ``location`` in a serialized ModelProto; ValueError if it is not one."""
    found: list[str] = []
    try:
        for number, wire, value in _fields(memoryview(model_bytes)):
            if wire != 2:
                continue
            if number == MODEL_GRAPH:
                _graph(value, found, 0)
            elif number == MODEL_FUNCTIONS:
                for n, w, v in _fields(value):
                    if n == FUNCTION_NODE and w == 2:
                        _node(v, found, 0)
    except _Malformed as exc:
        raise ValueError(str(exc)) from None
    return found


def check_external_data(path: Path, locations: list[str]) -> None:
    """Each location must be a relative path to a regular file inside the model's own folder."""
    folder = os.path.realpath(path.parent if str(path.parent) else ".")
    for location in dict.fromkeys(locations):
        shown = repr(location)
        parts = PurePosixPath(location.replace("\\", "/")).parts
        if not location or "\x00" in location or os.path.isabs(location) or location.startswith(("/", "\\")) \
                or ".." in parts or (len(location) > 1 and location[1] == ":"):
            raise UserError(f"{path}: external data location {shown} is outside the model's folder; "
                            "only files next to the model are read: re-export it with its weights inside")
        target = os.path.join(folder, *parts)
        real = os.path.realpath(target)
        if not (real + os.sep).startswith(folder + os.sep):
            raise UserError(f"{path}: external data file {shown} leads outside the model's folder (a symbolic "
                            "link); only files next to the model are read: copy the data there")
        try:
            info = os.stat(real)
        except FileNotFoundError:
            raise UserError(f"{path}: cannot load this model: its external data file {shown} is missing next to "
                            "it; copy it there or give a valid .onnx file") from None
        except OSError as exc:
            raise UserError(f"{path}: cannot read external data file {shown} ({exc.strerror})") from None
        if not stat.S_ISREG(info.st_mode):
            raise UserError(f"{path}: external data {shown} is {file_kind(info.st_mode)}, not a regular file; "
                            "give a valid .onnx file")
