"""Tests for netq.kernel.core.jhash against vectors from the kernel's own code.

How the vectors were produced: a throwaway C program (kept out of the repo)
that copies include/linux/jhash.h verbatim -- rol32() as in
include/linux/bitops.h, __jhash_mix, __jhash_final, JHASH_INITVAL, jhash(),
jhash2(), __jhash_nwords, jhash_1word/2words/3words -- and
reciprocal_scale() from include/linux/math.h, compiled with gcc on x86-64
(little-endian, so __get_unaligned_cpu32 reads little-endian) and printed for
the inputs below.
"""

from __future__ import annotations

import pytest

from netq.kernel.core.jhash import (
    JHASH_INITVAL,
    jhash,
    jhash2,
    jhash_1word,
    jhash_2words,
    jhash_3words,
    reciprocal_scale,
    rol32,
)

# (word, shift, rol32(word, shift))
ROL32 = [
    (0x80000001, 0, 0x80000001),
    (0x80000001, 1, 0x00000003),
    (0x80000001, 4, 0x00000018),
    (0x80000001, 14, 0x00006000),
    (0x80000001, 16, 0x00018000),
    (0x80000001, 25, 0x03000000),
    (0x80000001, 31, 0xc0000000),
    (0x80000001, 32, 0x80000001),
    (0x12345678, 0, 0x12345678),
    (0x12345678, 1, 0x2468acf0),
    (0x12345678, 4, 0x23456781),
    (0x12345678, 14, 0x159e048d),
    (0x12345678, 16, 0x56781234),
    (0x12345678, 25, 0xf02468ac),
    (0x12345678, 31, 0x091a2b3c),
    (0x12345678, 32, 0x12345678),
    (0xdeadbeef, 0, 0xdeadbeef),
    (0xdeadbeef, 1, 0xbd5b7ddf),
    (0xdeadbeef, 4, 0xeadbeefd),
    (0xdeadbeef, 14, 0x6fbbf7ab),
    (0xdeadbeef, 16, 0xbeefdead),
    (0xdeadbeef, 25, 0xdfbd5b7d),
    (0xdeadbeef, 31, 0xef56df77),
    (0xdeadbeef, 32, 0xdeadbeef),
]

# (a, initval, jhash_1word(a, initval))
JHASH_1WORD = [
    (0x00000000, 0x00000000, 0x049396b8),
    (0x00000000, 0x00000001, 0xd9a91087),
    (0x00000000, 0xdeadbeef, 0xfa0f3b86),
    (0x00000000, 0xffffffff, 0x6bd0060f),
    (0x00000000, 0x9e3779b9, 0xd0e2ea78),
    (0x00000001, 0x00000000, 0x72a82a9b),
    (0x00000001, 0x00000001, 0x76efdf8d),
    (0x00000001, 0xdeadbeef, 0xc393af12),
    (0x00000001, 0xffffffff, 0x8f68e60d),
    (0x00000001, 0x9e3779b9, 0x65141dc3),
    (0x00000002, 0x00000000, 0xee626cca),
    (0x00000002, 0x00000001, 0x06779e0f),
    (0x00000002, 0xdeadbeef, 0x77a98177),
    (0x00000002, 0xffffffff, 0x0526e833),
    (0x00000002, 0x9e3779b9, 0xc9df3cc8),
    (0x0000007f, 0x00000000, 0x067b96f8),
    (0x0000007f, 0x00000001, 0x0f65a976),
    (0x0000007f, 0xdeadbeef, 0x35603b10),
    (0x0000007f, 0xffffffff, 0xc4c5e037),
    (0x0000007f, 0x9e3779b9, 0x8a9c5218),
    (0x12345678, 0x00000000, 0xbc441425),
    (0x12345678, 0x00000001, 0xcd12b414),
    (0x12345678, 0xdeadbeef, 0x03399eb9),
    (0x12345678, 0xffffffff, 0x2f7f379d),
    (0x12345678, 0x9e3779b9, 0xe80c3f78),
    (0xdeadbeef, 0x00000000, 0x79e3d207),
    (0xdeadbeef, 0x00000001, 0xd70bbed3),
    (0xdeadbeef, 0xdeadbeef, 0x232c5c6d),
    (0xdeadbeef, 0xffffffff, 0x3708384c),
    (0xdeadbeef, 0x9e3779b9, 0xe3c5822f),
    (0x80000000, 0x00000000, 0x9184b23a),
    (0x80000000, 0x00000001, 0xad9e0a15),
    (0x80000000, 0xdeadbeef, 0x9a507a46),
    (0x80000000, 0xffffffff, 0x65362b47),
    (0x80000000, 0x9e3779b9, 0xcae48cca),
    (0xfffffffe, 0x00000000, 0x6ef32b3c),
    (0xfffffffe, 0x00000001, 0xdb4a8157),
    (0xfffffffe, 0xdeadbeef, 0x8098c6bb),
    (0xfffffffe, 0xffffffff, 0xb413f9ed),
    (0xfffffffe, 0x9e3779b9, 0x0c277cf3),
    (0xffffffff, 0x00000000, 0x9b11c75b),
    (0xffffffff, 0x00000001, 0x78d174e3),
    (0xffffffff, 0xdeadbeef, 0xc5f9410e),
    (0xffffffff, 0xffffffff, 0xeae46760),
    (0xffffffff, 0x9e3779b9, 0x4c564a1b),
]

# (a, b, initval, jhash_2words(a, b, initval))
JHASH_2WORDS = [
    (0x00000000, 0x00000000, 0x00000000, 0x58c184bf),
    (0x00000000, 0x00000000, 0xdeadbeef, 0x51b5a5da),
    (0x00000000, 0x00000000, 0x9e3779b9, 0x81519881),
    (0x00000001, 0x00000000, 0x00000000, 0x5543253f),
    (0x00000001, 0x00000000, 0xdeadbeef, 0xc151d69e),
    (0x00000001, 0x00000000, 0x9e3779b9, 0x493a321b),
    (0x00000000, 0x00000001, 0x00000000, 0xbe213431),
    (0x00000000, 0x00000001, 0xdeadbeef, 0x335d6d57),
    (0x00000000, 0x00000001, 0x9e3779b9, 0x5c721190),
    (0xdeadbeef, 0xcafebabe, 0x00000000, 0x3c2c6cd3),
    (0xdeadbeef, 0xcafebabe, 0xdeadbeef, 0x337ce610),
    (0xdeadbeef, 0xcafebabe, 0x9e3779b9, 0x5a25216e),
    (0xffffffff, 0xffffffff, 0x00000000, 0x52648e85),
    (0xffffffff, 0xffffffff, 0xdeadbeef, 0xb1347f4b),
    (0xffffffff, 0xffffffff, 0x9e3779b9, 0x1188cf81),
    (0x0a000001, 0x0a000002, 0x00000000, 0x0f4c7c43),
    (0x0a000001, 0x0a000002, 0xdeadbeef, 0x7b3c2f5e),
    (0x0a000001, 0x0a000002, 0x9e3779b9, 0x1467da33),
]

# (a, b, c, initval, jhash_3words(a, b, c, initval))
JHASH_3WORDS = [
    (0x00000000, 0x00000000, 0x00000000, 0x00000000, 0x1b68e557),
    (0x00000000, 0x00000000, 0x00000000, 0xdeadbeef, 0x2f7c62f9),
    (0x00000000, 0x00000000, 0x00000000, 0x9e3779b9, 0xbbeb49e0),
    (0x00000001, 0x00000002, 0x00000003, 0x00000000, 0xa46158f5),
    (0x00000001, 0x00000002, 0x00000003, 0xdeadbeef, 0x27983d68),
    (0x00000001, 0x00000002, 0x00000003, 0x9e3779b9, 0x59cf1882),
    (0xffffffff, 0xffffffff, 0xffffffff, 0x00000000, 0x6e0964a9),
    (0xffffffff, 0xffffffff, 0xffffffff, 0xdeadbeef, 0x29b0df0c),
    (0xffffffff, 0xffffffff, 0xffffffff, 0x9e3779b9, 0x1bafe277),
    (0xc0a80001, 0xc0a80002, 0x00501f90, 0x00000000, 0x3b84273b),
    (0xc0a80001, 0xc0a80002, 0x00501f90, 0xdeadbeef, 0xaac4d0dd),
    (0xc0a80001, 0xc0a80002, 0x00501f90, 0x9e3779b9, 0x5e80c747),
    (0xdeadbeef, 0x00000000, 0xdeadbeef, 0x00000000, 0x3638ba50),
    (0xdeadbeef, 0x00000000, 0xdeadbeef, 0xdeadbeef, 0xcf9e2154),
    (0xdeadbeef, 0x00000000, 0xdeadbeef, 0x9e3779b9, 0x783d5e23),
]

# Key for the byte vectors: byte i is (i * 37 + 11) & 0xff; the C program
# hashed its first n bytes.  (n, initval, jhash(key[:n], n, initval))
BYTE_KEY = bytes((i * 37 + 11) & 0xFF for i in range(64))
JHASH_BYTES = [
    (0, 0x00000000, 0xdeadbeef),
    (0, 0xdeadbeef, 0xbd5b7dde),
    (0, 0x9e3779b9, 0x7ce538a8),
    (1, 0x00000000, 0xb9c0f036),
    (1, 0xdeadbeef, 0x6bc22f88),
    (1, 0x9e3779b9, 0x5c8a8633),
    (2, 0x00000000, 0x76ccdd71),
    (2, 0xdeadbeef, 0x52e33806),
    (2, 0x9e3779b9, 0x60d5e7c9),
    (3, 0x00000000, 0xa71025c3),
    (3, 0xdeadbeef, 0x72f1b201),
    (3, 0x9e3779b9, 0x57335406),
    (4, 0x00000000, 0x44e1a72e),
    (4, 0xdeadbeef, 0xd3d98aa8),
    (4, 0x9e3779b9, 0x5373fd14),
    (5, 0x00000000, 0xcd53084d),
    (5, 0xdeadbeef, 0x6924dfcb),
    (5, 0x9e3779b9, 0x55bf47ef),
    (7, 0x00000000, 0x4f96845f),
    (7, 0xdeadbeef, 0x07c6fe51),
    (7, 0x9e3779b9, 0xceab3a91),
    (8, 0x00000000, 0x39c60a25),
    (8, 0xdeadbeef, 0xaff3fa94),
    (8, 0x9e3779b9, 0xd8178bf2),
    (9, 0x00000000, 0xa68c01f8),
    (9, 0xdeadbeef, 0x0680c497),
    (9, 0x9e3779b9, 0x4a075bc0),
    (11, 0x00000000, 0x37d9d710),
    (11, 0xdeadbeef, 0xb603dc2d),
    (11, 0x9e3779b9, 0x045a1a23),
    (12, 0x00000000, 0x387958f9),
    (12, 0xdeadbeef, 0xe7509eae),
    (12, 0x9e3779b9, 0xec8fb5d2),
    (13, 0x00000000, 0x0d543670),
    (13, 0xdeadbeef, 0x43c667de),
    (13, 0x9e3779b9, 0x4b7e2e89),
    (23, 0x00000000, 0x63d5873f),
    (23, 0xdeadbeef, 0xe406de52),
    (23, 0x9e3779b9, 0x70c3c536),
    (24, 0x00000000, 0x2d9723a7),
    (24, 0xdeadbeef, 0xa6fc5c3a),
    (24, 0x9e3779b9, 0x94e5e69e),
    (25, 0x00000000, 0x43bd1aa6),
    (25, 0xdeadbeef, 0x13f017a8),
    (25, 0x9e3779b9, 0x893909ae),
    (36, 0x00000000, 0xb1bfaf9f),
    (36, 0xdeadbeef, 0x33ea8224),
    (36, 0x9e3779b9, 0xba063d99),
    (37, 0x00000000, 0x8ed39ebc),
    (37, 0xdeadbeef, 0x2f8b16da),
    (37, 0x9e3779b9, 0x30a68df7),
    (64, 0x00000000, 0xe7d0352d),
    (64, 0xdeadbeef, 0x3451c442),
    (64, 0x9e3779b9, 0xdd35285f),
]

# (key, initval, jhash(key, len(key), initval))
JHASH_STRINGS = [
    (b"", 0x00000000, 0xdeadbeef),
    (b"", 0xdeadbeef, 0xbd5b7dde),
    (b"", 0x9e3779b9, 0x7ce538a8),
    (b"a", 0x00000000, 0x58d68708),
    (b"a", 0xdeadbeef, 0xdd24f4fb),
    (b"a", 0x9e3779b9, 0x7e34a1fa),
    (b"eth0", 0x00000000, 0xd988e6f5),
    (b"eth0", 0xdeadbeef, 0x40148eff),
    (b"eth0", 0x9e3779b9, 0x733146a3),
    (b"Four score and seven years ago", 0x00000000, 0x17770551),
    (b"Four score and seven years ago", 0xdeadbeef, 0x7ed6f46a),
    (b"Four score and seven years ago", 0x9e3779b9, 0xc94d535f),
    (b"\xff" * 13, 0x00000000, 0xbaf67575),
    (b"\xff" * 13, 0xdeadbeef, 0x1b6a0840),
    (b"\xff" * 13, 0x9e3779b9, 0x28622821),
]

# Words for jhash2: word i is (0x01000193 * (i + 1)) ^ 0x811c9dc5 (u32).
# (n, initval, jhash2(words[:n], n, initval))
WORD_KEY = [0x801c9c56, 0x831c9ee3, 0x821c997c, 0x851c9b89, 0x841c9a1a, 0x871c94b7, 0x861c96c0, 0x891c915d, 0x881c93ee, 0x8b1c927b]
JHASH2 = [
    (0, 0x00000000, 0xdeadbeef),
    (0, 0xdeadbeef, 0xbd5b7dde),
    (0, 0x9e3779b9, 0x7ce538a8),
    (1, 0x00000000, 0xd3c10f07),
    (1, 0xdeadbeef, 0x27abf70a),
    (1, 0x9e3779b9, 0x7e8709dc),
    (2, 0x00000000, 0x8ceb9956),
    (2, 0xdeadbeef, 0xf9921400),
    (2, 0x9e3779b9, 0x3e4517b2),
    (3, 0x00000000, 0x4ae918b3),
    (3, 0xdeadbeef, 0x1528e06e),
    (3, 0x9e3779b9, 0xa8b24fa3),
    (4, 0x00000000, 0x8d2aacb4),
    (4, 0xdeadbeef, 0xef0e204a),
    (4, 0x9e3779b9, 0xb412a88b),
    (5, 0x00000000, 0xf8ce2f47),
    (5, 0xdeadbeef, 0x49bbf921),
    (5, 0x9e3779b9, 0x3a998cd2),
    (6, 0x00000000, 0xdba5f131),
    (6, 0xdeadbeef, 0xb29c0787),
    (6, 0x9e3779b9, 0xbd8d9889),
    (7, 0x00000000, 0xe1f8fe46),
    (7, 0xdeadbeef, 0xff0a31f8),
    (7, 0x9e3779b9, 0xe57ac481),
    (8, 0x00000000, 0xa89e7e4e),
    (8, 0xdeadbeef, 0x9a31b83b),
    (8, 0x9e3779b9, 0xb7be86bd),
    (9, 0x00000000, 0x300a6c35),
    (9, 0xdeadbeef, 0xa83533a3),
    (9, 0x9e3779b9, 0x072fdaf8),
    (10, 0x00000000, 0xbe50590a),
    (10, 0xdeadbeef, 0x0778718b),
    (10, 0x9e3779b9, 0x9a31f81c),
]

# (val, ep_ro, reciprocal_scale(val, ep_ro))
RECIPROCAL_SCALE = [
    (0x00000000, 0x00000000, 0x00000000),
    (0x00000000, 0x00000001, 0x00000000),
    (0x00000000, 0x00000002, 0x00000000),
    (0x00000000, 0x00000003, 0x00000000),
    (0x00000000, 0x00000008, 0x00000000),
    (0x00000000, 0x00000010, 0x00000000),
    (0x00000000, 0x000003e8, 0x00000000),
    (0x00000000, 0xffffffff, 0x00000000),
    (0x00000001, 0x00000000, 0x00000000),
    (0x00000001, 0x00000001, 0x00000000),
    (0x00000001, 0x00000002, 0x00000000),
    (0x00000001, 0x00000003, 0x00000000),
    (0x00000001, 0x00000008, 0x00000000),
    (0x00000001, 0x00000010, 0x00000000),
    (0x00000001, 0x000003e8, 0x00000000),
    (0x00000001, 0xffffffff, 0x00000000),
    (0x7fffffff, 0x00000000, 0x00000000),
    (0x7fffffff, 0x00000001, 0x00000000),
    (0x7fffffff, 0x00000002, 0x00000000),
    (0x7fffffff, 0x00000003, 0x00000001),
    (0x7fffffff, 0x00000008, 0x00000003),
    (0x7fffffff, 0x00000010, 0x00000007),
    (0x7fffffff, 0x000003e8, 0x000001f3),
    (0x7fffffff, 0xffffffff, 0x7ffffffe),
    (0x80000000, 0x00000000, 0x00000000),
    (0x80000000, 0x00000001, 0x00000000),
    (0x80000000, 0x00000002, 0x00000001),
    (0x80000000, 0x00000003, 0x00000001),
    (0x80000000, 0x00000008, 0x00000004),
    (0x80000000, 0x00000010, 0x00000008),
    (0x80000000, 0x000003e8, 0x000001f4),
    (0x80000000, 0xffffffff, 0x7fffffff),
    (0xdeadbeef, 0x00000000, 0x00000000),
    (0xdeadbeef, 0x00000001, 0x00000000),
    (0xdeadbeef, 0x00000002, 0x00000001),
    (0xdeadbeef, 0x00000003, 0x00000002),
    (0xdeadbeef, 0x00000008, 0x00000006),
    (0xdeadbeef, 0x00000010, 0x0000000d),
    (0xdeadbeef, 0x000003e8, 0x00000365),
    (0xdeadbeef, 0xffffffff, 0xdeadbeee),
    (0xffffffff, 0x00000000, 0x00000000),
    (0xffffffff, 0x00000001, 0x00000000),
    (0xffffffff, 0x00000002, 0x00000001),
    (0xffffffff, 0x00000003, 0x00000002),
    (0xffffffff, 0x00000008, 0x00000007),
    (0xffffffff, 0x00000010, 0x0000000f),
    (0xffffffff, 0x000003e8, 0x000003e7),
    (0xffffffff, 0xffffffff, 0xfffffffe),
]


def test_initval_constant() -> None:
    assert JHASH_INITVAL == 0xDEADBEEF


@pytest.mark.parametrize("word,shift,expected", ROL32)
def test_rol32(word: int, shift: int, expected: int) -> None:
    assert rol32(word, shift) == expected


@pytest.mark.parametrize("a,initval,expected", JHASH_1WORD)
def test_jhash_1word(a: int, initval: int, expected: int) -> None:
    assert jhash_1word(a, initval) == expected


@pytest.mark.parametrize("a,b,initval,expected", JHASH_2WORDS)
def test_jhash_2words(a: int, b: int, initval: int, expected: int) -> None:
    assert jhash_2words(a, b, initval) == expected


@pytest.mark.parametrize("a,b,c,initval,expected", JHASH_3WORDS)
def test_jhash_3words(a: int, b: int, c: int, initval: int, expected: int) -> None:
    assert jhash_3words(a, b, c, initval) == expected


@pytest.mark.parametrize("n,initval,expected", JHASH_BYTES)
def test_jhash_bytes(n: int, initval: int, expected: int) -> None:
    key = BYTE_KEY[:n]
    assert jhash(key, initval) == expected
    assert jhash(bytearray(key), initval) == expected
    assert jhash(memoryview(key), initval) == expected


@pytest.mark.parametrize("key,initval,expected", JHASH_STRINGS)
def test_jhash_strings(key: bytes, initval: int, expected: int) -> None:
    assert jhash(key, initval) == expected


@pytest.mark.parametrize("n,initval,expected", JHASH2)
def test_jhash2(n: int, initval: int, expected: int) -> None:
    assert jhash2(WORD_KEY[:n], initval) == expected


def test_empty_key_skips_final() -> None:
    # case 0 in the kernel's switch: no __jhash_final, c is the raw state.
    assert jhash(b"", 0) == JHASH_INITVAL
    assert jhash2([], 5) == JHASH_INITVAL + 5


def test_nwords_agree_with_jhash2() -> None:
    # jhash_Nwords(...) == jhash2 of the same N words: both start from
    # JHASH_INITVAL + (N << 2) + initval and end in __jhash_final.
    for iv in (0, 1, 0xDEADBEEF, 0xFFFFFFFF):
        assert jhash_1word(0x12345678, iv) == jhash2([0x12345678], iv)
        assert jhash_2words(7, 9, iv) == jhash2([7, 9], iv)
        assert jhash_3words(1, 2, 3, iv) == jhash2([1, 2, 3], iv)


def test_arguments_wrap_to_u32() -> None:
    # C converts the arguments to u32; so does the port.
    assert jhash_1word(1 << 32 | 5, 0) == jhash_1word(5, 0)
    assert jhash_1word(-1, 0) == jhash_1word(0xFFFFFFFF, 0)
    assert jhash_1word(3, -1) == jhash_1word(3, 0xFFFFFFFF)
    assert jhash_2words(-1, 1 << 40, 1 << 33) == jhash_2words(0xFFFFFFFF, 0, 0)
    assert jhash_3words(-2, 0, 1 << 32, -1) == jhash_3words(0xFFFFFFFE, 0, 0, 0xFFFFFFFF)
    assert jhash(b"eth0", 1 << 32) == jhash(b"eth0", 0)
    assert jhash2([-1, 1 << 32], 0) == jhash2([0xFFFFFFFF, 0], 0)


def test_results_are_u32() -> None:
    for i in range(256):
        for h in (jhash_1word(i, i * 7919), jhash_2words(i, ~i, i),
                  jhash_3words(i, i << 24, ~i, -i), jhash(bytes([i]) * i, i)):
            assert 0 <= h <= 0xFFFFFFFF


@pytest.mark.parametrize("val,ep_ro,expected", RECIPROCAL_SCALE)
def test_reciprocal_scale(val: int, ep_ro: int, expected: int) -> None:
    assert reciprocal_scale(val, ep_ro) == expected


def test_reciprocal_scale_range() -> None:
    # Result is always in [0, ep_ro) for ep_ro > 0, and 0 for ep_ro == 0.
    for ep_ro in (1, 2, 3, 7, 8, 64, 1000, 0xFFFFFFFF):
        for val in (0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0xFFFFFFFF):
            assert 0 <= reciprocal_scale(val, ep_ro) < ep_ro
    assert reciprocal_scale(0xFFFFFFFF, 0) == 0
    # The top of the hash space maps to the last bucket, small hashes to 0.
    assert reciprocal_scale(0xFFFFFFFF, 8) == 7
    assert reciprocal_scale(0x1FFFFFFF, 8) == 0
    assert reciprocal_scale(0x20000000, 8) == 1
    # u32 arguments wrap like the C prototype.
    assert reciprocal_scale(1 << 32 | 0x80000000, 10) == 5
    assert reciprocal_scale(0x80000000, (1 << 32) + 10) == 5


def test_reciprocal_scale_power_of_two_takes_top_bits() -> None:
    # For ep_ro = 2**k (k < 32; 2**32 wraps to 0 as a u32) it is the top
    # k bits of val.
    for k in range(0, 32):
        for val in (0, 1, 0x12345678, 0xDEADBEEF, 0xFFFFFFFF):
            assert reciprocal_scale(val, 1 << k) == val >> (32 - k)
