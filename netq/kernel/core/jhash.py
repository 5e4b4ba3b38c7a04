"""Bob Jenkins' lookup3 hash exactly as the kernel's ``include/linux/jhash.h``.

Every function returns the same u32 the kernel computes for the same inputs
(on a little-endian CPU, see :func:`jhash`).  Python ints are unbounded, so
every intermediate is reduced modulo 2**32 where C's u32 arithmetic would
wrap; arguments are masked to u32 on entry the way C's implicit conversion
to ``u32`` would.

The hot entry points (:func:`jhash_1word`, :func:`jhash_2words`,
:func:`jhash_3words`) inline ``__jhash_final`` with plain int arithmetic and
local variables: no helper calls per packet.

Two seedings of the 1-3 word functions, by kernel version:

* today's (4.1+, 2015): ``__jhash_nwords(a, b, c, initval + JHASH_INITVAL +
  (n << 2))`` adds the same combined value to a, b and c
  (:func:`jhash_1word`, :func:`jhash_2words`, :func:`jhash_3words`);
* 3.x's (lookup3 in the kernel until then; 3.13's include/linux/jhash.h):
  ``a += JHASH_INITVAL; b += JHASH_INITVAL; c += initval``, and
  ``jhash_1word(a, iv) = jhash_3words(a, 0, 0, iv)``, ``jhash_2words(a, b,
  iv) = jhash_3words(a, b, 0, iv)`` (:func:`jhash_1word_legacy`,
  :func:`jhash_2words_legacy`, :func:`jhash_3words_legacy`).  The profiles
  with ``jhash_legacy_seed`` (2.6.37, 3.13) hash with these.

Also :func:`reciprocal_scale` from ``include/linux/math.h`` (older kernels:
``include/linux/kernel.h``), which the stack uses to map a hash onto
``[0, n)`` without a division.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "JHASH_INITVAL",
    "jhash",
    "jhash2",
    "jhash_1word",
    "jhash_1word_legacy",
    "jhash_2words",
    "jhash_2words_legacy",
    "jhash_3words",
    "jhash_3words_legacy",
    "reciprocal_scale",
    "rol32",
]

#: ``JHASH_INITVAL`` -- "an arbitrary initial parameter" (include/linux/jhash.h).
JHASH_INITVAL: int = 0xDEADBEEF

_M32 = 0xFFFFFFFF


def rol32(word: int, shift: int) -> int:
    """Rotate a 32-bit value left; mirrors ``rol32()`` in include/linux/bitops.h.

    The kernel computes ``(word << (shift & 31)) | (word >> ((-shift) & 31))``,
    so the shift count is taken modulo 32 (``rol32(x, 32) == x``).
    """
    word &= _M32
    shift &= 31
    return ((word << shift) | (word >> (32 - shift))) & _M32


def _final(a: int, b: int, c: int) -> int:
    """``__jhash_final(a, b, c)`` (include/linux/jhash.h); returns ``c``.

    Used by the cold paths (:func:`jhash`, :func:`jhash2`).  The per-packet
    functions inline the same seven lines instead of calling this.

    ``x - ((y << k) | (y >> (32 - k)))`` is reduced once at the end: the two
    shifted halves never overlap, so the OR equals ``rol32(y, k)`` modulo
    2**32 and the subtraction is correct modulo 2**32.
    """
    M = _M32
    c ^= b
    c = (c - ((b << 14) | (b >> 18))) & M
    a ^= c
    a = (a - ((c << 11) | (c >> 21))) & M
    b ^= a
    b = (b - ((a << 25) | (a >> 7))) & M
    c ^= b
    c = (c - ((b << 16) | (b >> 16))) & M
    a ^= c
    a = (a - ((c << 4) | (c >> 28))) & M
    b ^= a
    b = (b - ((a << 14) | (a >> 18))) & M
    c ^= b
    c = (c - ((b << 24) | (b >> 8))) & M
    return c


def _mix(a: int, b: int, c: int) -> tuple[int, int, int]:
    """``__jhash_mix(a, b, c)`` (include/linux/jhash.h); all inputs u32."""
    M = _M32
    a = (a - c) & M
    a ^= ((c << 4) | (c >> 28)) & M
    c = (c + b) & M
    b = (b - a) & M
    b ^= ((a << 6) | (a >> 26)) & M
    a = (a + c) & M
    c = (c - b) & M
    c ^= ((b << 8) | (b >> 24)) & M
    b = (b + a) & M
    a = (a - c) & M
    a ^= ((c << 16) | (c >> 16)) & M
    c = (c + b) & M
    b = (b - a) & M
    b ^= ((a << 19) | (a >> 13)) & M
    a = (a + c) & M
    c = (c - b) & M
    c ^= ((b << 4) | (b >> 28)) & M
    b = (b + a) & M
    return a, b, c


def jhash_1word(a: int, initval: int) -> int:
    """``jhash_1word(a, initval)`` (include/linux/jhash.h).

    Kernel: ``__jhash_nwords(a, 0, 0, initval + JHASH_INITVAL + (1 << 2))``,
    i.e. add the combined initval to a, b=0, c=0, then ``__jhash_final``.
    Inlined here because it runs per packet.
    """
    iv = (initval + 0xDEADBEEF + 4) & 0xFFFFFFFF
    a = ((a & 0xFFFFFFFF) + iv) & 0xFFFFFFFF
    b = iv
    c = iv
    M = 0xFFFFFFFF
    c ^= b
    c = (c - ((b << 14) | (b >> 18))) & M
    a ^= c
    a = (a - ((c << 11) | (c >> 21))) & M
    b ^= a
    b = (b - ((a << 25) | (a >> 7))) & M
    c ^= b
    c = (c - ((b << 16) | (b >> 16))) & M
    a ^= c
    a = (a - ((c << 4) | (c >> 28))) & M
    b ^= a
    b = (b - ((a << 14) | (a >> 18))) & M
    c ^= b
    c = (c - ((b << 24) | (b >> 8))) & M
    return c


def jhash_2words(a: int, b: int, initval: int) -> int:
    """``jhash_2words(a, b, initval)`` (include/linux/jhash.h).

    Kernel: ``__jhash_nwords(a, b, 0, initval + JHASH_INITVAL + (2 << 2))``.
    """
    M = 0xFFFFFFFF
    iv = (initval + 0xDEADBEEF + 8) & M
    a = ((a & M) + iv) & M
    b = ((b & M) + iv) & M
    c = iv
    c ^= b
    c = (c - ((b << 14) | (b >> 18))) & M
    a ^= c
    a = (a - ((c << 11) | (c >> 21))) & M
    b ^= a
    b = (b - ((a << 25) | (a >> 7))) & M
    c ^= b
    c = (c - ((b << 16) | (b >> 16))) & M
    a ^= c
    a = (a - ((c << 4) | (c >> 28))) & M
    b ^= a
    b = (b - ((a << 14) | (a >> 18))) & M
    c ^= b
    c = (c - ((b << 24) | (b >> 8))) & M
    return c


def jhash_3words(a: int, b: int, c: int, initval: int) -> int:
    """``jhash_3words(a, b, c, initval)`` (include/linux/jhash.h).

    Kernel: ``__jhash_nwords(a, b, c, initval + JHASH_INITVAL + (3 << 2))``.
    """
    M = 0xFFFFFFFF
    iv = (initval + 0xDEADBEEF + 12) & M
    a = ((a & M) + iv) & M
    b = ((b & M) + iv) & M
    c = ((c & M) + iv) & M
    c ^= b
    c = (c - ((b << 14) | (b >> 18))) & M
    a ^= c
    a = (a - ((c << 11) | (c >> 21))) & M
    b ^= a
    b = (b - ((a << 25) | (a >> 7))) & M
    c ^= b
    c = (c - ((b << 16) | (b >> 16))) & M
    a ^= c
    a = (a - ((c << 4) | (c >> 28))) & M
    b ^= a
    b = (b - ((a << 14) | (a >> 18))) & M
    c ^= b
    c = (c - ((b << 24) | (b >> 8))) & M
    return c


def jhash_3words_legacy(a: int, b: int, c: int, initval: int) -> int:
    """3.13's ``jhash_3words(a, b, c, initval)`` (include/linux/jhash.h of 3.x):
    ``a += JHASH_INITVAL; b += JHASH_INITVAL; c += initval;
    __jhash_final(a, b, c); return c;``.  Later kernels seed all three with
    ``initval + JHASH_INITVAL + (3 << 2)`` (:func:`jhash_3words`)."""
    M = 0xFFFFFFFF
    a = ((a & M) + 0xDEADBEEF) & M
    b = ((b & M) + 0xDEADBEEF) & M
    c = ((c & M) + (initval & M)) & M
    c ^= b
    c = (c - ((b << 14) | (b >> 18))) & M
    a ^= c
    a = (a - ((c << 11) | (c >> 21))) & M
    b ^= a
    b = (b - ((a << 25) | (a >> 7))) & M
    c ^= b
    c = (c - ((b << 16) | (b >> 16))) & M
    a ^= c
    a = (a - ((c << 4) | (c >> 28))) & M
    b ^= a
    b = (b - ((a << 14) | (a >> 18))) & M
    c ^= b
    c = (c - ((b << 24) | (b >> 8))) & M
    return c


def jhash_2words_legacy(a: int, b: int, initval: int) -> int:
    """3.13's ``jhash_2words(a, b, initval) = jhash_3words(a, b, 0, initval)``."""
    return jhash_3words_legacy(a, b, 0, initval)


def jhash_1word_legacy(a: int, initval: int) -> int:
    """3.13's ``jhash_1word(a, initval) = jhash_3words(a, 0, 0, initval)``:
    what 3.13's skb_tx_hash and get_xps_queue apply to sk_hash (or the
    protocol) with the boot's hashrnd."""
    return jhash_3words_legacy(a, 0, 0, initval)


def jhash(key: bytes | bytearray | memoryview, initval: int) -> int:
    """``jhash(key, length, initval)`` over an arbitrary byte string.

    Mirrors include/linux/jhash.h.  The length is ``len(key)``.  Full 12-byte
    blocks are read with ``__get_unaligned_cpu32``, i.e. in CPU byte order;
    this port fixes that to **little-endian** (x86/arm64), so results equal a
    little-endian kernel's.  The tail ``switch`` adds ``k[i] << 8*(i%4)``,
    which is a little-endian read of the zero-padded tail on any CPU, so it is
    done with ``int.from_bytes``.  As in the kernel, an empty key skips
    ``__jhash_final`` and returns ``JHASH_INITVAL + initval``.
    """
    M = _M32
    k = bytes(key)
    length = len(k)
    a = b = c = (JHASH_INITVAL + length + initval) & M
    off = 0
    frm = int.from_bytes
    while length > 12:
        a = (a + frm(k[off : off + 4], "little")) & M
        b = (b + frm(k[off + 4 : off + 8], "little")) & M
        c = (c + frm(k[off + 8 : off + 12], "little")) & M
        a, b, c = _mix(a, b, c)
        length -= 12
        off += 12
    if length == 0:
        return c
    tail = k[off:] + bytes(12 - length)
    a = (a + frm(tail[0:4], "little")) & M
    b = (b + frm(tail[4:8], "little")) & M
    c = (c + frm(tail[8:12], "little")) & M
    return _final(a, b, c)


def jhash2(k: Sequence[int], initval: int) -> int:
    """``jhash2(k, length, initval)``: hash an array of u32 words.

    Mirrors include/linux/jhash.h; the length in words is ``len(k)`` and the
    initial state is ``JHASH_INITVAL + (length << 2) + initval``.  Words are
    masked to u32.  No endianness dependence (words, not bytes).
    """
    M = _M32
    length = len(k)
    a = b = c = (JHASH_INITVAL + (length << 2) + initval) & M
    i = 0
    while length > 3:
        a = (a + (k[i] & M)) & M
        b = (b + (k[i + 1] & M)) & M
        c = (c + (k[i + 2] & M)) & M
        a, b, c = _mix(a, b, c)
        length -= 3
        i += 3
    if length == 0:
        return c
    if length == 3:
        c = (c + (k[i + 2] & M)) & M
    if length >= 2:
        b = (b + (k[i + 1] & M)) & M
    a = (a + (k[i] & M)) & M
    return _final(a, b, c)


def reciprocal_scale(val: int, ep_ro: int) -> int:
    """Scale a u32 ``val`` into ``[0, ep_ro)``.

    Mirrors ``reciprocal_scale()`` in include/linux/math.h:
    ``(u32)(((u64) val * ep_ro) >> 32)``.  Both arguments are masked to u32
    first, as the C prototype ``(u32 val, u32 ep_ro)`` would.  ``ep_ro == 0``
    yields 0 (the kernel does not check either).
    """
    return ((val & 0xFFFFFFFF) * (ep_ro & 0xFFFFFFFF)) >> 32
