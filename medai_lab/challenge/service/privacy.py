"""Keep a challenge folder private to the evaluator's account (the service's own account).

Participants never touch the folder: they submit through the service. The folder is made
``0700`` and its spec and database ``0600``; a folder owned by another account is refused
(the service could not keep it private). Hidden labels live outside the folder: a phase whose
labels others may read is reported, not changed (they may be shared with other tools).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from medai_lab.challenge.api import DB_FILE, SPEC_FILE, Challenge
from medai_lab.challenge.errors import ChallengeError

PRIVATE_DIR, PRIVATE_FILE = 0o700, 0o600


def make_private(ch: Challenge) -> list[str]:
    """Restrict the challenge folder to this account; warnings about the hidden data."""
    root = ch.root
    if root.stat().st_uid != os.geteuid():
        raise ChallengeError(
            f"the challenge folder {root} belongs to uid {root.stat().st_uid}; run the service as "
            "its owner (the evaluator's account) so that only it can read the folder"
        )
    os.chmod(root, PRIVATE_DIR)
    for name in (SPEC_FILE, DB_FILE, f"{DB_FILE}-wal", f"{DB_FILE}-shm", f"{DB_FILE}-journal"):
        if (root / name).exists():
            os.chmod(root / name, PRIVATE_FILE)
    warnings = []
    for phase in ch.spec.phases:
        if phase.hidden and _others_may_read(phase.labels):
            warnings.append(
                f"phase {phase.name!r}: its labels folder {phase.labels} is readable by other "
                f"accounts (chmod o-rwx, g-rwx to keep the hidden labels hidden)"
            )
    return warnings


def _others_may_read(folder: Path) -> bool:
    mode = folder.stat().st_mode
    return bool(mode & (stat.S_IROTH | stat.S_IXOTH | stat.S_IRGRP | stat.S_IXGRP))
