#!/usr/bin/env python3
"""An independent implementation of docs/primary-keys.md (RSA), written
from the document alone, for checking the golden vectors:

    python3 docs/primary-keys-reference.py 2048 3072

prints, per key size, the SHA-256 of the modulus and the candidate count.
"""
import hashlib
import hmac
import math
import sys


class Stream:
    """HMAC_H(seed, [i]_32 || label || 0 || contextU || contextV || [0]_32), i = 1, 2, ..."""

    def __init__(self, h, seed, label, context_u, context_v):
        self.h, self.seed = h, seed
        self.prefix = label + b"\0"
        self.context = context_u + context_v + (0).to_bytes(4, "big")
        self.i, self.buf = 0, b""

    def read(self, n):
        while len(self.buf) < n:
            self.i += 1
            block = self.i.to_bytes(4, "big") + self.prefix + self.context
            self.buf += hmac.new(self.seed, block, self.h).digest()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out


SMALL_PRIMES = [p for p in range(3, 2000, 2) if all(p % d for d in range(3, math.isqrt(p) + 1, 2))]
assert len(SMALL_PRIMES) == 302


def strong_probable_prime(c, a):
    d, s = c - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    x = pow(a, d, c)
    if x in (1, c - 1):
        return True
    for _ in range(s - 1):
        x = x * x % c
        if x == c - 1:
            return True
        if x == 1:
            return False
    return False


def find_prime(stream, k, e, other, count):
    octets = k // 8
    rounds = 5 if k == 1024 else 4
    for _ in range(32 * k):
        count[0] += 1
        b = bytearray(stream.read(octets))
        b[0] |= 0xC0
        b[-1] |= 0x01
        c = int.from_bytes(b, "big")
        if any(c % p == 0 for p in SMALL_PRIMES):
            continue
        if math.gcd(c - 1, e) != 1:
            continue
        if other is not None and abs(c - other) <= 2 ** (k - 100):
            continue
        for _ in range(rounds):
            a = 2 + int.from_bytes(stream.read(octets), "big") % (c - 3)
            if not strong_probable_prime(c, a):
                break
        else:
            return c
    raise RuntimeError("no prime found")


def derive(stream, bits, e=65537):
    k, count = bits // 2, [0]
    p = find_prime(stream, k, e, None, count)
    q = find_prime(stream, k, e, p, count)
    n = p * q
    assert n.bit_length() == bits
    return n, max(p, q), count[0]


if __name__ == "__main__":
    for bits in map(int, sys.argv[1:] or ["2048", "3072"]):
        stream = Stream(hashlib.sha256, b"\x11" * 32, b"vtpm-primary-v1", b"golden-template-name", b"")
        n, _, count = derive(stream, bits)
        print(bits, hashlib.sha256(n.to_bytes(bits // 8, "big")).hexdigest(), count)
