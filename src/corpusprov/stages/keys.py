"""Natural keys: value semantics for dedup, and compact tables of 128-bit key digests.

:class:`DigestSet` and :class:`DigestTable` are the native types of ``corpusprov._digests``
when the install could build it (a C compiler was there), else the pure-Python
:class:`PyDigestSet` and :class:`PyDigestTable`: the reference they are tested against,
with the same behaviour and memory, about 2.5 us slower per call.
"""

from __future__ import annotations

import hashlib
import math
from array import array
from collections.abc import Iterator, Sequence
from typing import Any, Final

import orjson

__all__ = [
    "KEY_PERSON",
    "NATIVE_DIGESTS",
    "DigestSet",
    "DigestTable",
    "NonFiniteKeyError",
    "PyDigestSet",
    "PyDigestTable",
    "key_digest",
    "key_part",
]

_EMPTY: Final = -1

#: blake2b personalisation of :func:`key_digest`'s fast branch (the native merge fast path uses it too).
KEY_PERSON: Final = b"corpusprov-k1"


class NonFiniteKeyError(ValueError):
    """A key field holds NaN or an infinity: such a row has no usable identity."""

    def __init__(self, field_name: str) -> None:
        super().__init__(field_name)
        self.field_name = field_name


class _MemberName(str):
    """An object member's name on :func:`key_part`'s work stack (told apart from a string value)."""

    __slots__ = ()


def key_part(value: Any) -> bytes:
    """Encode one key value so that equal-by-contract values give equal bytes, at every depth.

    Numbers compare by value (``23 == 23.0``, also inside lists and objects), strings exactly,
    a string never equals a number, ``true`` never equals ``1``, and object members compare
    regardless of order. A non-finite number anywhere inside ``value`` raises
    :class:`NonFiniteKeyError`. Integers of any size are exact (hex digits: Python's
    decimal-digit limit does not apply), and nesting depth is bounded by memory only.
    """
    out = bytearray()
    # An explicit stack, not recursion: a row may nest far deeper than Python's frame limit.
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is str or kind is _MemberName:
            encoded = item.encode("utf-8", "surrogatepass")
            out += b"k" if kind is _MemberName else b"s"
            out += b"%d:" % len(encoded)
            out += encoded
        elif kind is bool:
            out += b"t" if item else b"f"
        elif kind is int:
            out += b"i%x;" % item
        elif kind is float:
            if not math.isfinite(item):
                raise NonFiniteKeyError("")
            if item.is_integer():
                out += b"i%x;" % int(item)
            else:
                out += b"r" + repr(item).encode() + b";"
        elif item is None:
            out += b"z"
        elif kind is list:
            out += b"[%d:" % len(item)
            stack.extend(reversed(item))
        elif kind is dict:
            out += b"{%d:" % len(item)
            for name in sorted(item, reverse=True):
                stack.append(item[name])
                stack.append(_MemberName(name))
        else:
            raise TypeError(f"not a JSON value: {kind.__name__}")
    return bytes(out)


def key_digest(row: dict[str, Any], fields: Sequence[str]) -> bytes:
    """128-bit digest of the natural key of ``row`` (fields must all be present)."""
    # Fast path for the usual scalar keys: an integral float becomes the int it equals,
    # then orjson's bytes already keep strings, numbers, booleans and null apart.
    values = []
    for name in fields:
        value = row[name]
        kind = type(value)
        if kind is float:
            if not math.isfinite(value):
                raise NonFiniteKeyError(name)
            if value.is_integer():
                value = int(value)
        elif kind is not str and kind is not int and kind is not bool and value is not None:
            return _key_digest_general(row, fields)
        values.append(value)
    try:
        return hashlib.blake2b(orjson.dumps(values), digest_size=16, person=KEY_PERSON).digest()
    except orjson.JSONEncodeError:  # an int beyond 64 bits
        return _key_digest_general(row, fields)


def _key_digest_general(row: dict[str, Any], fields: Sequence[str]) -> bytes:
    """Any JSON values: each field's :func:`key_part`, length-prefixed."""
    hasher = hashlib.blake2b(digest_size=16, person=b"corpusprov-k2")
    for name in fields:
        try:
            part = key_part(row[name])
        except NonFiniteKeyError:
            raise NonFiniteKeyError(name) from None
        hasher.update(len(part).to_bytes(4, "little"))
        hasher.update(part)
    return hasher.digest()


class PyDigestTable:
    """Open-addressing map from 16-byte digests to non-negative ints.

    About 24 bytes a slot, at most half full after growth: well under 64 bytes per
    unique key, where a ``set`` of key tuples costs several hundred. Collisions of
    128-bit digests are not a practical concern (2^-64 at four billion keys).
    """

    __slots__ = ("_capacity", "_keys", "_size", "_values")

    def __init__(self, capacity: int = 1024) -> None:
        size = 8
        while size < capacity:
            size *= 2
        self._capacity = size
        self._keys = bytearray(16 * size)
        self._values = array("q", [_EMPTY]) * size
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def nbytes(self) -> int:
        """Bytes held by the table's buffers."""
        return len(self._keys) + self._values.itemsize * len(self._values)

    def _slot(self, digest: bytes) -> int:
        mask = self._capacity - 1
        index = int.from_bytes(digest[:8], "little") & mask
        keys = self._keys
        values = self._values
        while True:
            if values[index] == _EMPTY:
                return index
            offset = index * 16
            if keys[offset : offset + 16] == digest:
                return index
            index = (index + 1) & mask

    def get(self, digest: bytes) -> int | None:
        """The value stored for ``digest``, or ``None``."""
        value = self._values[self._slot(digest)]
        return None if value == _EMPTY else value

    def setdefault(self, digest: bytes, value: int) -> int | None:
        """Store ``value`` if ``digest`` is new and return ``None``; else return the old value."""
        index = self._slot(digest)
        old = self._values[index]
        if old != _EMPTY:
            return old
        self._put(index, digest, value)
        return None

    def set(self, digest: bytes, value: int) -> int | None:
        """Store ``value`` for ``digest``; return the value it replaced, if any."""
        index = self._slot(digest)
        old = self._values[index]
        if old != _EMPTY:
            self._values[index] = value
            return old
        self._put(index, digest, value)
        return None

    def _put(self, index: int, digest: bytes, value: int) -> None:
        if value < 0:
            raise ValueError("DigestTable values must be non-negative")
        offset = index * 16
        self._keys[offset : offset + 16] = digest
        self._values[index] = value
        self._size += 1
        if self._size * 2 > self._capacity:
            self._grow()

    def _grow(self) -> None:
        old_keys = self._keys
        old_values = self._values
        self._capacity *= 2
        self._keys = bytearray(16 * self._capacity)
        self._values = array("q", [_EMPTY]) * self._capacity
        mask = self._capacity - 1
        keys = self._keys
        values = self._values
        for old_index, value in enumerate(old_values):
            if value == _EMPTY:
                continue
            digest = old_keys[old_index * 16 : old_index * 16 + 16]
            index = int.from_bytes(digest[:8], "little") & mask
            while values[index] != _EMPTY:
                index = (index + 1) & mask
            keys[index * 16 : index * 16 + 16] = digest
            values[index] = value

    def values(self) -> Iterator[int]:
        """Every stored value, in no particular order."""
        return (value for value in self._values if value != _EMPTY)


class PyDigestSet:
    """A set of 16-byte digests in about 25-50 bytes each: for ``keep: first`` dedup.

    256 open-addressing shards (by the digest's first byte), each kept between 35% and
    70% full, so growing one shard never holds two copies of the whole set. A byte per
    slot marks it used, so a probe reads a byte before it compares 16.
    """

    __slots__ = ("_keys", "_masks", "_sizes", "_used")

    _LOAD: Final = 0.7

    def __init__(self) -> None:
        self._keys = [bytearray(16 * 64) for _ in range(256)]
        self._used = [bytearray(64) for _ in range(256)]
        self._masks = [63] * 256
        self._sizes = [0] * 256

    def __len__(self) -> int:
        return sum(self._sizes)

    def nbytes(self) -> int:
        """Bytes held by the shards."""
        return sum(len(keys) + len(used) for keys, used in zip(self._keys, self._used, strict=True))

    def add(self, digest: bytes) -> bool:
        """Add ``digest``; False when it was already there."""
        shard = digest[0]
        used = self._used[shard]
        mask = self._masks[shard]
        index = int.from_bytes(digest[1:9], "little") & mask
        while used[index]:
            offset = index << 4
            if self._keys[shard][offset : offset + 16] == digest:
                return False
            index = (index + 1) & mask
        used[index] = 1
        offset = index << 4
        self._keys[shard][offset : offset + 16] = digest
        size = self._sizes[shard] = self._sizes[shard] + 1
        if size > (mask + 1) * self._LOAD:
            self._grow(shard)
        return True

    def __contains__(self, digest: object) -> bool:
        if not isinstance(digest, bytes) or len(digest) != 16:
            return False
        shard = digest[0]
        used = self._used[shard]
        keys = self._keys[shard]
        mask = self._masks[shard]
        index = int.from_bytes(digest[1:9], "little") & mask
        while used[index]:
            if keys[index << 4 : (index << 4) + 16] == digest:
                return True
            index = (index + 1) & mask
        return False

    def _grow(self, shard: int) -> None:
        old_keys = self._keys[shard]
        old_used = self._used[shard]
        mask = (self._masks[shard] + 1) * 2 - 1
        keys = bytearray(16 * (mask + 1))
        used = bytearray(mask + 1)
        for slot, flag in enumerate(old_used):
            if not flag:
                continue
            digest = old_keys[slot << 4 : (slot << 4) + 16]
            index = int.from_bytes(digest[1:9], "little") & mask
            while used[index]:
                index = (index + 1) & mask
            used[index] = 1
            keys[index << 4 : (index << 4) + 16] = digest
        self._keys[shard] = keys
        self._used[shard] = used
        self._masks[shard] = mask


try:
    from corpusprov._digests import DigestSet, DigestTable

    NATIVE_DIGESTS: Final = True
except ImportError:  # installed without a C compiler: the reference tables, slower per row
    DigestSet = PyDigestSet  # type: ignore[misc,assignment]
    DigestTable = PyDigestTable  # type: ignore[misc,assignment]
    NATIVE_DIGESTS: Final = False  # type: ignore[misc]
