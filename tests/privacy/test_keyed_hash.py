"""The keyed dataset hash a public checkpoint names its data by (docs/design.md, "Release boundary").

Reference: HMAC-SHA256 written out from its definition (RFC 2104: H((K ⊕ opad) ‖ H((K ⊕ ipad) ‖ m)) with
the key zero-padded to the 64-byte block), independent of the ``hmac`` module the code uses.
"""

from __future__ import annotations

import hashlib
import secrets

from dpaudit.rundir import keyed_dataset_hash


def _hmac_by_definition(key: bytes, msg: bytes) -> str:
    block = (hashlib.sha256(key).digest() if len(key) > 64 else key).ljust(64, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in block) + msg).digest()
    return hashlib.sha256(bytes(b ^ 0x5C for b in block) + inner).hexdigest()


def test_keyed_hash_is_hmac_sha256_of_the_content_hash():
    key, data = secrets.token_hex(32), hashlib.sha256(b"text,label\na,pos\n").hexdigest()
    expected = _hmac_by_definition(key.encode(), b"dpaudit-dataset-1:" + data.encode())
    assert keyed_dataset_hash(key, data) == expected


def test_without_the_key_it_says_nothing_an_unkeyed_hash_would():
    d, d_neighbour = hashlib.sha256(b"D").hexdigest(), hashlib.sha256(b"D'").hexdigest()
    k1, k2 = secrets.token_hex(32), secrets.token_hex(32)
    assert keyed_dataset_hash(k1, d) == keyed_dataset_hash(k1, d)  # checkable by whoever holds split.json
    assert keyed_dataset_hash(k1, d) != keyed_dataset_hash(k1, d_neighbour)
    assert keyed_dataset_hash(k1, d) != keyed_dataset_hash(k2, d)  # two releases of the same data do not link
    assert keyed_dataset_hash(k1, d) not in (d, hashlib.sha256(d.encode()).hexdigest())
