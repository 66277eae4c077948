"""The byte layout of one DICOM header, to read the next file of a series without a walk.

Files of one series usually differ only in a few values (position, instance number, UIDs)
of the same lengths. :class:`Layout` remembers where every element header of a parsed file
sits. Another file whose bytes at those places are the same (tag, VR and length of every
element, the preamble, the transfer syntax) has, by induction over the elements, exactly
the same elements at the same offsets, so its wanted values can be sliced out directly.
This is a proof, not a guess: one differing length shifts what follows, and the check
fails.
"""

from __future__ import annotations

import numpy as np

_HEAD_BYTES = np.arange(8)  # tag (4) + VR and 16-bit length, or implicit 32-bit length
_LONG_BYTES = np.arange(4)  # the 32-bit length of a long-VR explicit element


class Layout:
    """Element offsets of one header and the bytes that must match to share them."""

    def __init__(
        self,
        buf: bytes,
        heads: list[int],
        longs: list[int],
        fixed: list[tuple[int, int]],
        result: tuple[list[tuple[str, str, int, int]], str, int, int],
    ) -> None:
        parts = [np.add.outer(np.asarray(heads), _HEAD_BYTES).ravel()]
        if longs:
            parts.append(np.add.outer(np.asarray(longs), _LONG_BYTES).ravel())
        parts += [np.arange(start, start + length) for start, length in fixed]
        self.index = np.concatenate(parts).astype(np.intp)
        self.end = int(self.index.max()) + 1
        self.expect = np.frombuffer(buf, dtype=np.uint8, count=self.end)[self.index].tobytes()
        # wanted values as (keyword, kind, start, length), transfer syntax, pixel offset, length
        self.result = result

    def matches(self, buf: bytes) -> bool:
        """Whether ``buf`` has every element of this layout at the same offset and length."""
        if len(buf) < self.end:
            return False
        return (
            np.frombuffer(buf, dtype=np.uint8, count=self.end)[self.index].tobytes() == self.expect
        )
