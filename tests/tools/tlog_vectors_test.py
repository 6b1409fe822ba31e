#!/usr/bin/env python3
"""ihs-verify's bare forms against test vectors made by an independent implementation.

  tlog_vectors_test.py IHS_VERIFY_BINARY

The reference is RFC 9162's own definitions, written out here recursively in Python (hashlib's
SHA-256): MTH (2.1.1), PATH (2.1.3.1) and PROOF/SUBPROOF (2.1.4.1), with no code shared with ihs.
It is checked first against the published Certificate Transparency reference roots of the 8-leaf
tree (RFC 6962's test data, as every CT implementation's tests carry them). Then every inclusion
proof of trees up to 20 leaves and every consistency proof between sizes up to 20 must verify in
ihs-verify, and each with one byte of one hash changed, or with a wrong size, must not (exit 4);
malformed values are bad input (exit 2).
"""
import hashlib
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import Checks  # noqa: E402

VERIFY = sys.argv[1]
CHECKS = Checks()
check = CHECKS.check


def sha(b):
    return hashlib.sha256(b).digest()


def leaf_hash(d):
    return sha(b"\x00" + d)


def node_hash(a, b):
    return sha(b"\x01" + a + b)


def split(n):  # the largest power of two smaller than n
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(leaves):
    n = len(leaves)
    if n == 0:
        return sha(b"")
    if n == 1:
        return leaf_hash(leaves[0])
    k = split(n)
    return node_hash(mth(leaves[:k]), mth(leaves[k:]))


def path(m, leaves):
    n = len(leaves)
    if n == 1:
        return []
    k = split(n)
    if m < k:
        return path(m, leaves[:k]) + [mth(leaves[k:])]
    return path(m - k, leaves[k:]) + [mth(leaves[:k])]


def subproof(m, leaves, b):
    n = len(leaves)
    if m == n:
        return [] if b else [mth(leaves)]
    k = split(n)
    if m <= k:
        return subproof(m, leaves[:k], b) + [mth(leaves[k:])]
    return subproof(m - k, leaves[k:], False) + [mth(leaves[:k])]


def proof(m, leaves):
    return subproof(m, leaves, True)


# RFC 6962's test data, as published with Certificate Transparency.
CT_LEAVES = [bytes.fromhex(h) for h in ["", "00", "10", "2021", "3031", "40414243",
                                       "5051525354555657", "606162636465666768696a6b6c6d6e6f"]]
CT_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


def run(args):
    return subprocess.run([VERIFY] + args, capture_output=True, timeout=30).returncode


def flip(h):
    return bytes([h[0] ^ 0x01]) + h[1:]


def main():
    for n in range(len(CT_LEAVES) + 1):
        check(f"reference root of {n}", mth(CT_LEAVES[:n]).hex() == CT_ROOTS[n])

    leaves = CT_LEAVES + [bytes([i, i * 7 % 256]) for i in range(12)]  # 20 leaves
    for n in range(1, len(leaves) + 1):
        tree = leaves[:n]
        root = mth(tree)
        for m in range(n):
            p = path(m, tree)
            args = [leaf_hash(tree[m]).hex(), str(m), str(n), root.hex()] + [h.hex() for h in p]
            check(f"inclusion {m} of {n}", run(["inclusion-values"] + args) == 0)
            if m == n // 2:  # mutations on one leaf of each size (each a process start)
                if p:
                    bad = args[:4] + [flip(p[0]).hex()] + [h.hex() for h in p[1:]]
                    check(f"inclusion {m} of {n}, a hash changed", run(["inclusion-values"] + bad) == 4)
                bad = [leaf_hash(b"other").hex()] + args[1:]
                check(f"inclusion {m} of {n}, another leaf", run(["inclusion-values"] + bad) == 4)
                if n > 1:
                    bad = [args[0], str(m ^ 1 if (m ^ 1) < n else m - 1)] + args[2:]
                    check(f"inclusion {m} of {n}, another index",
                          run(["inclusion-values"] + bad) == 4)
    for n in range(1, len(leaves) + 1):
        new_root = mth(leaves[:n])
        for m in range(0, n + 1):
            old_root = mth(leaves[:m])
            p = proof(m, leaves[:n]) if 0 < m < n else []
            args = [str(m), str(n), old_root.hex(), new_root.hex()] + [h.hex() for h in p]
            check(f"consistency {m} to {n}", run(["consistency-values"] + args) == 0)
            if m == n // 2 and p:
                bad = args[:4] + [flip(p[-1]).hex()] + [h.hex() for h in p[:-1]]
                check(f"consistency {m} to {n}, reordered and changed",
                      run(["consistency-values"] + bad) == 4)
                bad = args[:2] + [flip(old_root).hex()] + args[3:]
                check(f"consistency {m} to {n}, another old root", run(["consistency-values"] + bad) == 4)
    # From the empty tree: only the empty root.
    check("consistency from 0 with a non-empty old root",
          run(["consistency-values", "0", "3", mth(leaves[:1]).hex(), mth(leaves[:3]).hex()]) == 4)
    # Base64 is accepted as well as hex.
    import base64
    b64 = lambda h: base64.b64encode(h).decode()
    check("base64 values", run(["inclusion-values", b64(leaf_hash(leaves[0])), "0", "2",
                                b64(mth(leaves[:2])), b64(leaf_hash(leaves[1]))]) == 0)
    # Bad input is 2, not 4.
    for bad in (["inclusion-values", "zz", "0", "1", CT_ROOTS[1]],
                ["inclusion-values", CT_ROOTS[1], "-1", "1", CT_ROOTS[1]],
                ["inclusion-values", CT_ROOTS[1], "0", "99999999999999999999999", CT_ROOTS[1]],
                ["consistency-values", "1", "2", CT_ROOTS[1], "abc"]):
        check(f"bad input {bad[1:3]} is 2", run(bad) == 2)

    return CHECKS.finish()


if __name__ == "__main__":
    sys.exit(main())
