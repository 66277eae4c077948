"""The project key and everything derived from it: UIDs, pseudonyms, date shifts.

All replacements are HMAC-SHA256 of the original value under one secret project key, so
the same input maps to the same output in every file, run and machine that share the key,
and nobody without the key can reverse or even test a guess.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from medai_lab.errors import MedaiError

KEY_ENV = "MEDAI_DEID_KEY_FILE"
_KEY_BYTES = 32
MAX_SHIFT_DAYS = 3650
_CACHE = 200_000


def default_key_file() -> Path:
    """``$MEDAI_DEID_KEY_FILE`` or ``~/.config/medai-lab/deid.key``."""
    env = os.environ.get(KEY_ENV)
    if env:
        return Path(env)
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "medai-lab" / "deid.key"


def load_or_create_key(path: str | os.PathLike[str] | None = None) -> bytes:
    """Read the key file, creating it (mode 0600, 256 random bits) only if it is absent."""
    p = Path(path) if path is not None else default_key_file()
    try:
        text = p.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        p.parent.mkdir(parents=True, exist_ok=True)
        text = secrets.token_hex(_KEY_BYTES)
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(text + "\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise MedaiError(f"cannot read key file {p}: {exc}") from None
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise MedaiError(f"key file {p} does not hold a hex key") from None
    if len(key) < 16:
        raise MedaiError(f"key file {p} holds fewer than 128 bits")
    return key


class Keyed:
    """Keyed replacements under one project key (cached: UIDs repeat across files)."""

    def __init__(self, key: bytes) -> None:
        self._key = key
        self._uids: dict[bytes, bytes] = {}

    def digest(self, purpose: str, *parts: bytes | str) -> bytes:
        msg = purpose.encode() + b"".join(
            b"\x00" + (p.encode("utf-8") if isinstance(p, str) else p) for p in parts
        )
        return hmac.new(self._key, msg, hashlib.sha256).digest()

    def uid(self, original: bytes) -> bytes:
        """``2.25.<128-bit integer>`` for one UID (PS3.5 B.2): at most 44 characters."""
        out = self._uids.get(original)
        if out is None:
            out = b"2.25." + str(int.from_bytes(self.digest("uid", original)[:16], "big")).encode()
            if len(self._uids) >= _CACHE:
                self._uids.clear()  # bounded memory on archive-sized runs
            self._uids[original] = out
        return out

    def derived_uid(self, purpose: str, *parts: bytes | str) -> bytes:
        """A UID for something the input lacks (e.g. an empty StudyInstanceUID)."""
        return b"2.25." + str(int.from_bytes(self.digest(purpose, *parts)[:16], "big")).encode()

    def pseudonym(self, identity: bytes) -> bytes:
        """``MEDAI-`` and 12 hex digits: valid as both LO (Patient ID) and PN."""
        return b"MEDAI-" + self.digest("patient", identity)[:6].hex().upper().encode()

    def shift_days(self, identity: bytes) -> int:
        """Per-patient date shift, 1 to 3650 days into the past."""
        return 1 + int.from_bytes(self.digest("dateshift", identity)[:4], "big") % MAX_SHIFT_DAYS
