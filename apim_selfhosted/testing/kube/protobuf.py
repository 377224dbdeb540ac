"""Decoding of the protobuf request bodies kubectl sends for ``kubectl create <kind>``.

kubectl's typed clients send built-in objects as ``application/vnd.kubernetes.protobuf``: the
magic ``k8s\\x00`` followed by a ``runtime.Unknown`` envelope (``typeMeta``, ``raw``) whose
``raw`` bytes are the object in the wire format of Kubernetes' ``generated.proto`` files. The
emulator answers in JSON (clients accept it) and decodes the few kinds that kubectl's generators
create — ``Namespace``, ``Secret``, ``ConfigMap``, ``ServiceAccount`` and the
``SelfSubjectAccessReview`` of ``kubectl auth can-i`` — from the field numbers
of those messages. Other kinds get ``415 Unsupported Media Type``.

Example:
    >>> meta = _field(1, _bytes(_field(1, _bytes(b"t"))))
    >>> secret = meta + _field(2, _bytes(_field(1, _bytes(b"value")) + _field(2, _bytes(b"abc"))))
    >>> envelope = _field(1, _bytes(_field(1, _bytes(b"v1")) + _field(2, _bytes(b"Secret"))))
    >>> body = MAGIC + envelope + _field(2, _bytes(secret))
    >>> decode(body)
    {'apiVersion': 'v1', 'kind': 'Secret', 'metadata': {'name': 't'}, 'data': {'value': 'YWJj'}}
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from typing import Any

MAGIC = b"k8s\x00"
"""The four bytes every Kubernetes protobuf body starts with."""


class ProtobufError(ValueError):
    """A body that is not Kubernetes protobuf, or a kind this decoder does not know."""


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise ProtobufError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 70:
            raise ProtobufError("varint too long")


def _fields(data: bytes) -> Iterator[tuple[int, int, Any]]:
    """``(field number, wire type, value)`` for each field of a message."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
            yield number, wire, value
        elif wire == 2:
            length, pos = _varint(data, pos)
            if pos + length > len(data):
                raise ProtobufError("truncated field")
            yield number, wire, data[pos : pos + length]
            pos += length
        elif wire == 1:
            yield number, wire, data[pos : pos + 8]
            pos += 8
        elif wire == 5:
            yield number, wire, data[pos : pos + 4]
            pos += 4
        else:
            raise ProtobufError(f"unsupported wire type {wire}")


# a message is described by {field number: (json name, decoder, repeated)}
_Decoder = Callable[[Any], Any]
_Message = dict[int, tuple[str, _Decoder, bool]]


def _text(value: Any) -> str:
    return bytes(value).decode("utf-8")


def _b64(value: Any) -> str:
    return base64.b64encode(bytes(value)).decode()


def _bool(value: Any) -> bool:
    return bool(value)


def _int(value: Any) -> int:
    return int(value)


def _message(spec: _Message) -> _Decoder:
    return lambda value: _decode_message(bytes(value), spec)


def _map(value_decoder: _Decoder) -> _Decoder:
    def decode_entry(value: Any) -> tuple[str, Any]:
        key, item = "", value_decoder(b"")
        for number, _, field in _fields(bytes(value)):
            if number == 1:
                key = _text(field)
            elif number == 2:
                item = value_decoder(field)
        return key, item

    return decode_entry


def _time(value: Any) -> str:
    from datetime import UTC, datetime

    seconds = 0
    for number, _, field in _fields(bytes(value)):
        if number == 1:
            seconds = int(field)
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_OWNER_REFERENCE: _Message = {
    5: ("apiVersion", _text, False),
    1: ("kind", _text, False),
    3: ("name", _text, False),
    4: ("uid", _text, False),
    6: ("controller", _bool, False),
    7: ("blockOwnerDeletion", _bool, False),
}
_OBJECT_META: _Message = {
    1: ("name", _text, False),
    2: ("generateName", _text, False),
    3: ("namespace", _text, False),
    5: ("uid", _text, False),
    6: ("resourceVersion", _text, False),
    7: ("generation", _int, False),
    8: ("creationTimestamp", _time, False),
    11: ("labels", _map(_text), True),
    12: ("annotations", _map(_text), True),
    13: ("ownerReferences", _message(_OWNER_REFERENCE), True),
    14: ("finalizers", _text, True),
}
_META = (1, ("metadata", _message(_OBJECT_META), False))
_OBJECT_REFERENCE: _Message = {
    1: ("kind", _text, False),
    2: ("namespace", _text, False),
    3: ("name", _text, False),
    4: ("uid", _text, False),
    5: ("apiVersion", _text, False),
}
_RESOURCE_ATTRIBUTES: _Message = {
    1: ("namespace", _text, False),
    2: ("verb", _text, False),
    3: ("group", _text, False),
    4: ("version", _text, False),
    5: ("resource", _text, False),
    6: ("subresource", _text, False),
    7: ("name", _text, False),
}
_KINDS: dict[tuple[str, str], _Message] = {
    ("authorization.k8s.io/v1", "SelfSubjectAccessReview"): {
        _META[0]: _META[1],
        2: (
            "spec",
            _message(
                {
                    1: ("resourceAttributes", _message(_RESOURCE_ATTRIBUTES), False),
                    2: (
                        "nonResourceAttributes",
                        _message({1: ("path", _text, False), 2: ("verb", _text, False)}),
                        False,
                    ),
                }
            ),
            False,
        ),
    },
    ("v1", "Secret"): {
        _META[0]: _META[1],
        2: ("data", _map(_b64), True),
        3: ("type", _text, False),
        4: ("stringData", _map(_text), True),
        5: ("immutable", _bool, False),
    },
    ("v1", "ConfigMap"): {
        _META[0]: _META[1],
        2: ("data", _map(_text), True),
        3: ("binaryData", _map(_b64), True),
        4: ("immutable", _bool, False),
    },
    ("v1", "Namespace"): {
        _META[0]: _META[1],
        2: ("spec", _message({1: ("finalizers", _text, True)}), False),
    },
    ("v1", "ServiceAccount"): {
        _META[0]: _META[1],
        2: ("secrets", _message(_OBJECT_REFERENCE), True),
        3: ("imagePullSecrets", _message({1: ("name", _text, False)}), True),
        4: ("automountServiceAccountToken", _bool, False),
    },
}


def _decode_message(data: bytes, spec: _Message) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for number, _, value in _fields(data):
        entry = spec.get(number)
        if entry is None:
            continue
        name, decoder, repeated = entry
        decoded = decoder(value)
        if not repeated:
            # Go writes non-pointer strings and numbers even when empty; JSON omits them
            if decoded == "" or (decoded == 0 and not isinstance(decoded, bool)):
                continue
            out[name] = decoded
        elif isinstance(decoded, tuple):
            out.setdefault(name, {})[decoded[0]] = decoded[1]
        else:
            out.setdefault(name, []).append(decoded)
    return out


def decode(body: bytes) -> dict[str, Any]:
    """Decodes a Kubernetes protobuf body into the object's JSON form.

    Args:
        body: The request body (``k8s\\x00`` + ``runtime.Unknown``).

    Returns:
        The object as a JSON-style dict with ``apiVersion`` and ``kind``.

    Raises:
        ProtobufError: Not Kubernetes protobuf, or a kind this decoder does not know.
    """
    if not body.startswith(MAGIC):
        raise ProtobufError("the body does not start with the Kubernetes protobuf magic")
    api_version = kind = ""
    raw = b""
    for number, _, value in _fields(body[len(MAGIC) :]):
        if number == 1:
            for sub, _, field in _fields(bytes(value)):
                if sub == 1:
                    api_version = _text(field)
                elif sub == 2:
                    kind = _text(field)
        elif number == 2:
            raw = bytes(value)
    spec = _KINDS.get((api_version, kind))
    if spec is None:
        raise ProtobufError(f"cannot decode {kind} {api_version} from protobuf")
    obj: dict[str, Any] = {"apiVersion": api_version, "kind": kind}
    obj.update(_decode_message(raw, spec))
    return obj


# --- encoding helpers for the examples and tests --------------------------------------------


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2) with ``payload`` already length-prefixed."""
    return _encode_varint(number << 3 | 2) + payload


def _bytes(data: bytes) -> bytes:
    return _encode_varint(len(data)) + data


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)
