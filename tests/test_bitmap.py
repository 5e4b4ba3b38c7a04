"""Tests for netq.kernel.core.bitmap (sysfs cpumask parse/print).

How the vectors were produced: throwaway C programs (kept out of the repo).
Parsing: ``bitmap_parse()``, ``bitmap_find_region_reverse()``,
``bitmap_get_x32_reverse()`` and ``__end_of_region()`` copied verbatim from
lib/bitmap-str.c, with hex_to_bin() from lib/hexdump.c, isspace() from the
lib/ctype.c table and strnchrnul() from lib/string.c, run on x86-64 with
``buflen`` = the number of bytes written (as xps_cpus_store() passes ``len``).
Printing: the loops of ``bitmap_string()`` (``%*pb``) and
``bitmap_list_string()`` (``%*pbl``) from lib/vsprintf.c, with number()'s
``SMALL | ZEROPAD`` base-16 output done by ``"%0*x"``.
"""

from __future__ import annotations

import errno
import random

import pytest

from netq.kernel.core.bitmap import (
    MaskError,
    bitmap_parse,
    cpulist_format,
    cpumask_format,
    cpumask_to_list,
)

# (nmaskbits, text, mask) -- the kernel returns 0 and this mask.
ACCEPT = [
    (64, "", 0x0),
    (64, "\n", 0x0),
    (64, ",", 0x0),
    (64, " , ,\t", 0x0),
    (64, "0", 0x0),
    (64, "0\n", 0x0),
    (64, "1", 0x1),
    (64, "f", 0xF),
    (64, "F", 0xF),
    (64, "aBcD", 0xABCD),
    (64, "ffffffff", 0xFFFFFFFF),
    (64, "00000001,00000000", 0x100000000),
    (64, "1,0", 0x100000000),
    (64, "1,,5", 0x100000005),  # empty groups are skipped
    (64, ",44", 0x44),
    (64, "  3  \n", 0x3),
    (64, "1 2", 0x100000002),  # whitespace separates groups like ','
    (64, "1\t,\t2", 0x100000002),
    (64, "f\nzz", 0xF),  # input ends at the first newline ...
    (64, "f\0zz", 0xF),  # ... or NUL
    (64, "ffffffff,ffffffff", 0xFFFFFFFFFFFFFFFF),
    (64, b"\xa01\xa0", 0x1),  # kernel isspace(0xA0) is true
    (8, "ff", 0xFF),
    (8, "0ff", 0xFF),
    (4, "f", 0xF),
    (1, "1", 0x1),
    (0, "", 0x0),
    (0, ",", 0x0),
    (36, "f,ffffffff", 0xFFFFFFFFF),
    (40, "ff,00000000", 0xFF00000000),
    (96, "1,2,3", 0x10000000200000003),
    (96, "ffffffff,ffffffff,ffffffff", (1 << 96) - 1),
    (128, "80000000,0,0,0", 1 << 127),
    (16, "0000ffff", 0xFFFF),
]

# (nmaskbits, text, errno, words the message must contain)
REJECT = [
    (64, "1,00000000,00000000", errno.EOVERFLOW, ["too many groups", "at most 2"]),
    (64, "0,0,0", errno.EOVERFLOW, ["too many groups", "even if"]),
    (64, "0x1", errno.EINVAL, ["'x'", "offset 1", "no '0x' prefix"]),
    (64, "0X1", errno.EINVAL, ["'X'", "no '0x' prefix"]),
    (64, "-1", errno.EINVAL, ["'-'", "offset 0", "hex digits"]),
    (64, "+1", errno.EINVAL, ["'+'", "hex digits"]),
    (64, "1g", errno.EINVAL, ["'g'", "offset 1"]),
    (64, "g", errno.EINVAL, ["'g'", "comma-separated 32-bit groups"]),
    (
        64,
        "123456789",
        errno.EOVERFLOW,
        ["'123456789'", "more than 8 hex digits", "did you mean '1,23456789'"],
    ),
    (64, "000000001", errno.EOVERFLOW, ["'000000001'", "leading zeros", "did you mean '1'"]),
    (64, "12345678x", errno.EINVAL, ["'x'", "offset 8"]),
    (64, "1;2", errno.EINVAL, ["';'"]),
    (64, "\u00a01", errno.EINVAL, ["byte 0xc2"]),  # UTF-8 C2 A0; C2 is not a space
    (8, "1ff", errno.EOVERFLOW, ["bit 8", "only 8 bits", "CPUs 0-7"]),
    (8, "100", errno.EOVERFLOW, ["bit 8", "CPUs 0-7"]),
    (8, "0,ff", errno.EOVERFLOW, ["too many groups", "at most 1 "]),
    (4, "10", errno.EOVERFLOW, ["bit 4", "CPUs 0-3"]),
    (1, "2", errno.EOVERFLOW, ["bit 1", "only 1 bit (CPU 0)"]),
    (0, "0", errno.EOVERFLOW, ["0 bits", "only an empty string"]),
    (36, "10,00000000", errno.EOVERFLOW, ["bit 36", "CPUs 0-35"]),
    (36, "1,0,0", errno.EOVERFLOW, ["too many groups", "at most 2"]),
    (40, "100,00000000", errno.EOVERFLOW, ["bit 40"]),
    (96, "1,0,0,0", errno.EOVERFLOW, ["too many groups", "at most 3"]),
    (16, "00010000", errno.EOVERFLOW, ["bit 16", "CPUs 0-15"]),
    # Errors are found scanning from the end, like the kernel:
    (64, "g,123456789", errno.EOVERFLOW, ["more than 8 hex digits"]),
    (64, "123456789,g", errno.EINVAL, ["'g'", "offset 10"]),
]

# The kernel skips, unchecked, the character just before an 8-digit group.
# (nmaskbits, text, what the kernel returns)
KERNEL_SKIPS_CHAR = [
    (64, "x12345678", 0x12345678),
    (64, "1x12345678", 0x112345678),
]

# (mask, nbits, "%*pb", "%*pbl")
FORMAT = [
    (0x0, 0, "", ""),
    (0xF, 0, "", ""),
    (0x0, 1, "0", ""),
    (0x1, 1, "1", "0"),
    (0xF, 4, "f", "0-3"),
    (0x3, 8, "03", "0-1"),
    (0xFF, 8, "ff", "0-7"),
    (0x1FF, 8, "ff", "0-7"),
    (0x5, 12, "005", "0,2"),
    (0xFFFF, 16, "ffff", "0-15"),
    (0x1, 31, "00000001", "0"),
    (0x1, 32, "00000001", "0"),
    (0xDEADBEEF, 32, "deadbeef", "0-3,5-7,9-13,15-16,18-19,21,23,25-28,30-31"),
    (0x1, 33, "0,00000001", "0"),
    (0xF00000001, 36, "f,00000001", "0,32-35"),
    (0xF0000000F, 36, "f,0000000f", "0-3,32-35"),
    (0x100000000, 64, "00000001,00000000", "32"),
    (0x8000000000000001, 64, "80000000,00000001", "0,63"),
    (0x10F, 64, "00000000,0000010f", "0-3,8"),
    (0x38000000000000001, 65, "1,80000000,00000001", "0,63-64"),
    ((1 << 128) - 1, 128, "ffffffff,ffffffff,ffffffff,ffffffff", "0-127"),
    (0x50000000100000003, 96, "00000005,00000001,00000003", "0-1,32,64,66"),
    (0xAAAAAAAA, 40, "00,aaaaaaaa", "1,3,5,7,9,11,13,15,17,19,21,23,25,27,29,31"),
    (0x0F0F00, 24, "0f0f00", "8-11,16-19"),
]


@pytest.mark.parametrize("nbits,text,expected", ACCEPT)
def test_parse_accepts(nbits: int, text: str | bytes, expected: int) -> None:
    assert bitmap_parse(text, nbits) == expected
    assert bitmap_parse(text, nbits, strict=False) == expected


@pytest.mark.parametrize("nbits,text,err,words", REJECT)
def test_parse_rejects(nbits: int, text: str, err: int, words: list[str]) -> None:
    for strict in (True, False):
        with pytest.raises(MaskError) as info:
            bitmap_parse(text, nbits, strict=strict)
        assert info.value.errno == err
        assert isinstance(info.value, ValueError)
        msg = str(info.value)
        assert repr(text) in msg  # names the input
        for word in words:
            assert word in msg, (word, msg)


@pytest.mark.parametrize("nbits,text,kernel", KERNEL_SKIPS_CHAR)
def test_skipped_char_quirk(nbits: int, text: str, kernel: int) -> None:
    # strict (default) rejects what the kernel silently skips ...
    with pytest.raises(MaskError) as info:
        bitmap_parse(text, nbits)
    assert info.value.errno == errno.EINVAL
    assert "'x'" in str(info.value)
    # ... strict=False reproduces the kernel.
    assert bitmap_parse(text, nbits, strict=False) == kernel


def test_bytes_and_str_agree() -> None:
    for text in ("f", "1,0", " 3 \n", "ffffffff,00000000"):
        assert bitmap_parse(text, 64) == bitmap_parse(text.encode(), 64)
        assert bitmap_parse(text, 64) == bitmap_parse(bytearray(text.encode()), 64)


def test_negative_nmaskbits() -> None:
    with pytest.raises(ValueError):
        bitmap_parse("1", -1)


@pytest.mark.parametrize("mask,nbits,hexstr,liststr", FORMAT)
def test_format(mask: int, nbits: int, hexstr: str, liststr: str) -> None:
    assert cpumask_format(mask, nbits) == hexstr
    assert cpulist_format(mask, nbits) == liststr


def test_cpulist_format_unbounded() -> None:
    assert cpulist_format(0) == ""
    assert cpulist_format(0b1) == "0"
    assert cpulist_format(0x10F) == "0-3,8"
    assert cpulist_format(0b1011_0110) == "1-2,4-5,7"
    assert cpulist_format(1 << 1000 | 1 << 999 | 1) == "0,999-1000"
    assert cpulist_format(0x10F, -3) == ""


def test_cpumask_to_list() -> None:
    assert cpumask_to_list(0) == []
    assert cpumask_to_list(1) == [0]
    assert cpumask_to_list(0x10F) == [0, 1, 2, 3, 8]
    assert cpumask_to_list(1 << 200 | 1 << 64 | 1 << 63) == [63, 64, 200]


def test_negative_masks_rejected() -> None:
    for fn in (cpumask_to_list, cpulist_format):
        with pytest.raises(ValueError):
            fn(-1)
    with pytest.raises(ValueError):
        cpumask_format(-1, 8)


def test_round_trip_random_masks() -> None:
    rng = random.Random(0x5EED)
    for _ in range(2000):
        nbits = rng.choice([1, 2, 4, 7, 8, 16, 31, 32, 33, 36, 63, 64, 65, 96, 128, 200, 256, 1024])
        density = rng.random()
        mask = 0
        for bit in range(nbits):
            if rng.random() < density:
                mask |= 1 << bit
        text = cpumask_format(mask, nbits)
        assert bitmap_parse(text, nbits) == mask
        assert bitmap_parse(text + "\n", nbits) == mask  # as sysfs shows it
        assert cpumask_to_list(mask) == [b for b in range(nbits) if mask >> b & 1]
        # the list form names exactly the set bits
        listed: list[int] = []
        for part in filter(None, cpulist_format(mask).split(",")):
            lo, _, hi = part.partition("-")
            listed.extend(range(int(lo), int(hi or lo) + 1))
        assert listed == cpumask_to_list(mask)
