"""The sysfs cpumask text format: parse and print, as the kernel does.

``/sys/class/net/DEV/queues/tx-N/xps_cpus`` is written through
``xps_cpus_store()`` (net/core/net-sysfs.c), which calls
``bitmap_parse(buf, len, cpumask_bits(mask), nr_cpumask_bits)``; it is read
back through ``bitmap_print_to_pagebuf(false, ...)`` i.e. ``"%*pb\\n"``.

* :func:`bitmap_parse` mirrors ``bitmap_parse()`` in lib/bitmap-str.c
  (lib/bitmap.c in older kernels): the right-to-left parser of the 2020
  rework, not the older left-to-right ``__bitmap_parse()``, which rejected
  ``'1,,5'`` and embedded whitespace.
* :func:`cpumask_format` mirrors ``bitmap_string()`` (``%*pb``) in
  lib/vsprintf.c; :func:`cpulist_format` mirrors ``bitmap_list_string()``
  (``%*pbl``).

Masks are plain Python ints (bit n = CPU n) instead of ``unsigned long``
arrays.
"""

from __future__ import annotations

import errno as _errno

__all__ = [
    "MaskError",
    "bitmap_parse",
    "cpulist_format",
    "cpumask_format",
    "cpumask_to_list",
]

_FORMAT_HINT = (
    "a cpumask is hex digits in comma-separated 32-bit groups, most "
    "significant group first, e.g. 'f' (CPUs 0-3) or '00000001,00000000' "
    "(CPU 32); no '0x' prefix"
)

# isspace() per the kernel's _ctype table (lib/ctype.c): \t \n \v \f \r,
# space, and 0xA0 (Latin-1 no-break space).
_SPACE = frozenset(b"\t\n\x0b\x0c\r \xa0")
# __end_of_region() in lib/bitmap-str.c: isspace(c) || c == ','.
_SEP = _SPACE | {ord(",")}
# hex_to_bin() (lib/hexdump.c): 0-9, a-f, A-F.
_HEX = {c: int(chr(c), 16) for c in b"0123456789abcdefABCDEF"}


class MaskError(ValueError):
    """A cpumask string the kernel's ``bitmap_parse()`` would refuse.

    ``errno`` is what the kernel returns to ``write(2)``: ``EINVAL`` for a
    character that is not a hex digit, comma or whitespace, ``EOVERFLOW`` for
    a group of more than 8 hex digits, too many groups, or a CPU bit at or
    above ``nmaskbits``.
    """

    def __init__(self, message: str, errno: int) -> None:
        super().__init__(message)
        self.errno = errno


def _show_byte(c: int) -> str:
    """Describe one input byte for an error message."""
    if 0x20 <= c < 0x7F:
        return f"character {chr(c)!r}"
    return f"byte 0x{c:02x}"


def _regroup(group: str) -> str:
    """Suggest ``group`` re-split into 8-digit groups: '123456789' -> '1,23456789'."""
    digits = group.lstrip("0") or "0"
    if not all(ch in "0123456789abcdefABCDEF" for ch in digits):
        return ""
    chunks = []
    while digits:
        chunks.append(digits[-8:])
        digits = digits[:-8]
    return f"; did you mean {','.join(reversed(chunks))!r}?"


def _cpu_range(nbits: int) -> str:
    """'CPUs 0-7' / 'CPU 0' / 'no CPUs' for an nbits-wide mask."""
    if nbits <= 0:
        return "no CPUs"
    return "CPU 0" if nbits == 1 else f"CPUs 0-{nbits - 1}"


def _to_bytes(text: str | bytes | bytearray) -> bytes:
    """Bytes a ``write()`` of ``text`` would hand to the kernel (UTF-8)."""
    if isinstance(text, str):
        return text.encode("utf-8", "surrogateescape")
    return bytes(text)


def bitmap_parse(text: str | bytes | bytearray, nmaskbits: int, *, strict: bool = True) -> int:
    """Parse a hex cpumask the way ``bitmap_parse()`` does; return it as an int.

    Mirrors ``bitmap_parse()``, ``bitmap_find_region_reverse()`` and
    ``bitmap_get_x32_reverse()`` in lib/bitmap-str.c, including the
    order in which errors are found (the string is scanned from the end, so
    e.g. ``'g,123456789'`` is ``EOVERFLOW``, not ``EINVAL``).  What the
    kernel accepts:

    * Input ends at the first ``'\\n'`` or NUL; anything after it is ignored
      (``'f\\nzz'`` is ``0xf``), as ``strnchrnul(start, buflen, '\\n')``.
    * Groups are separated by ``','`` *or* whitespace, and empty groups are
      skipped: ``''``, ``','``, ``'1,,5'`` (== ``'1,5'``), ``',44'`` and
      ``'1 2'`` (== ``'1,2'`` == ``0x1_00000002``) are all accepted.
    * Each group is 1..8 hex digits, either case, no ``0x``; a group with
      9+ digits is ``EOVERFLOW`` even if the extra digits are leading zeros.
    * More groups than ``ceil(nmaskbits / 32)`` is ``EOVERFLOW`` even if they
      are zero (``'0,0,0'`` for 64 bits); so is any set bit >= ``nmaskbits``.

    ``str`` input is encoded as UTF-8 (what writing it to sysfs would send);
    ``bytes`` are taken as is, so byte 0xA0 counts as whitespace like the
    kernel's ``isspace()``.

    Deviation (only with ``strict=True``, the default): after reading an
    8-digit group, the kernel steps over the preceding character without
    checking it unless it is a hex digit, so ``'x12345678'`` parses as
    ``0x12345678`` and ``'1x12345678'`` as ``0x1_12345678``.  That is an
    unchecked-character bug, not a format; ``strict=True`` raises ``EINVAL``
    for it instead.  ``strict=False`` reproduces the kernel exactly.

    Raises :class:`MaskError` (with ``.errno``) wherever the kernel returns
    an error.
    """
    if nmaskbits < 0:
        raise ValueError(f"nmaskbits must be >= 0, got {nmaskbits}")
    buf = _to_bytes(text)
    # strnchrnul(start, buflen, '\n') - 1: stop at the first '\n' or NUL.
    stop = len(buf)
    for term in (b"\n", b"\0"):
        i = buf.find(term, 0, stop)
        if i >= 0:
            stop = i
    end = stop - 1

    max_chunks = (nmaskbits + 31) // 32  # BITS_TO_U32(nmaskbits)
    mask = 0
    chunk = 0
    sep = _SEP
    hexv = _HEX
    while True:
        # bitmap_find_region_reverse()
        while end >= 0 and buf[end] in sep:
            end -= 1
        if end < 0:
            break
        if chunk >= max_chunks:
            if nmaskbits == 0:
                msg = (
                    f"cpumask {text!r} has too many groups: the mask has "
                    f"0 bits (no CPUs), so only an empty string is accepted"
                )
            else:
                plural = "" if max_chunks == 1 else "s"
                msg = (
                    f"cpumask {text!r} has too many groups for a mask "
                    f"of {nmaskbits} bits ({_cpu_range(nmaskbits)}): at "
                    f"most {max_chunks} comma-separated 32-bit group"
                    f"{plural}, even if the extra groups are zero"
                )
            raise MaskError(msg, _errno.EOVERFLOW)
        # bitmap_get_x32_reverse()
        group_end = end
        val = 0
        shift = 0
        while True:
            c = buf[end]
            d = hexv.get(c)
            if d is None:
                raise MaskError(
                    f"invalid {_show_byte(c)} at offset {end} in cpumask {text!r}: {_FORMAT_HINT}",
                    _errno.EINVAL,
                )
            val |= d << shift
            end -= 1
            shift += 4
            if end < 0 or buf[end] in sep:
                break
            if shift == 32:
                c = buf[end]
                if c in hexv:
                    start = end
                    while start > 0 and buf[start - 1] not in sep:
                        start -= 1
                    group = buf[start : group_end + 1].decode("utf-8", "replace")
                    raise MaskError(
                        f"group {group!r} in cpumask {text!r} has more than "
                        f"8 hex digits: each comma-separated group is exactly "
                        f"32 bits, at most 8 hex digits, leading zeros "
                        f"included{_regroup(group)}",
                        _errno.EOVERFLOW,
                    )
                if strict:
                    raise MaskError(
                        f"invalid {_show_byte(c)} at offset {end} in cpumask "
                        f"{text!r}: {_FORMAT_HINT}",
                        _errno.EINVAL,
                    )
                end -= 1  # the kernel's unchecked hex_to_bin(*end--)
                break
        mask |= val << (32 * chunk)
        chunk += 1

    if mask >> nmaskbits:
        top = mask.bit_length() - 1
        raise MaskError(
            f"cpumask {text!r} sets bit {top} (CPU {top}) but the mask has "
            f"only {nmaskbits} bit{'' if nmaskbits == 1 else 's'} "
            f"({_cpu_range(nmaskbits)})",
            _errno.EOVERFLOW,
        )
    return mask


def cpumask_to_list(mask: int) -> list[int]:
    """Set bit numbers of ``mask`` in ascending order (``for_each_cpu``)."""
    if mask < 0:
        raise ValueError(f"mask must be >= 0, got {mask}")
    out: list[int] = []
    while mask:
        low = mask & -mask
        out.append(low.bit_length() - 1)
        mask ^= low
    return out


def cpumask_format(mask: int, nbits: int) -> str:
    """Print ``mask`` as ``%*pb`` with field width ``nbits`` (sysfs cpumask).

    Mirrors ``bitmap_string()`` in lib/vsprintf.c: comma-separated 32-bit
    groups, most significant first, lowercase hex.  Every group is
    zero-padded to 8 digits except the top one, which is padded to
    ``DIV_ROUND_UP(nbits % 32 or 32, 4)`` digits; e.g. ``nbits=4`` gives
    ``'f'``, ``nbits=8`` gives ``'03'``, ``nbits=36`` gives ``'0,0000000f'``.
    Bits at or above ``nbits`` are not printed; ``nbits == 0`` prints ``''``.
    sysfs (``bitmap_print_to_pagebuf``) appends ``'\\n'``; this does not.
    """
    if mask < 0:
        raise ValueError(f"mask must be >= 0, got {mask}")
    if nbits <= 0:
        return ""
    top = nbits & 31 or 32
    i = ((nbits + 31) & ~31) - 32
    parts = [f"{(mask >> i) & ((1 << top) - 1):0{(top + 3) // 4}x}"]
    i -= 32
    while i >= 0:
        parts.append(f"{(mask >> i) & 0xFFFFFFFF:08x}")
        i -= 32
    return ",".join(parts)


def cpulist_format(mask: int, nbits: int | None = None) -> str:
    """Print ``mask`` as ``%*pbl`` (``'0-3,8'``), like sysfs cpulist files.

    Mirrors ``bitmap_list_string()`` in lib/vsprintf.c: ascending ranges of
    consecutive set bits, a single bit as ``'n'``, a run as ``'lo-hi'``,
    joined by ``','``; an empty mask prints ``''``.  ``nbits`` limits the
    bits considered (the ``%*`` field width); ``None`` means all of them.
    """
    if mask < 0:
        raise ValueError(f"mask must be >= 0, got {mask}")
    if nbits is not None:
        mask &= (1 << max(nbits, 0)) - 1
    parts: list[str] = []
    while mask:
        lo = (mask & -mask).bit_length() - 1
        # run of ones starting at lo: add the low bit to find the run's end
        run = ((mask >> lo) + 1) & ~(mask >> lo)
        hi = lo + run.bit_length() - 2
        parts.append(str(lo) if hi == lo else f"{lo}-{hi}")
        mask &= ~((1 << (hi + 1)) - 1)
    return ",".join(parts)
