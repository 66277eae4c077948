"""Credentials for a DICOMweb PACS: HTTP basic (user + password) or a bearer token.

Secrets come from the environment (``MEDAI_PACS_TOKEN``, or ``MEDAI_PACS_USER`` +
``MEDAI_PACS_PASSWORD``) or from files (first line, stripped), never from the command line
where ``ps`` and shell history would show them. They are never printed or logged:
``repr(Auth)`` masks them and no error message quotes them.

A secret file readable by group or others is refused, as ``ssh`` refuses such a key: on a
shared hub that file has already leaked, and a warning scrolls by unread. The message says
the fix (``chmod 600``; for a Kubernetes secret volume ``defaultMode: 0400``);
``strict_permissions=False`` turns the refusal into a logged warning.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medai_lab.pacs.query import PacsError

log = logging.getLogger(__name__)

ENV_TOKEN = "MEDAI_PACS_TOKEN"
ENV_USER = "MEDAI_PACS_USER"
ENV_PASSWORD = "MEDAI_PACS_PASSWORD"


@dataclass(frozen=True)
class Auth:
    """HTTP credentials: ``kind`` is ``"basic"`` (user + secret) or ``"bearer"`` (token)."""

    kind: str
    user: str | None = None
    secret: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        if self.kind not in ("basic", "bearer"):
            raise PacsError(f"unknown authentication kind {self.kind!r} (basic or bearer)")
        if not self.secret:
            raise PacsError(f"empty {'password' if self.kind == 'basic' else 'token'}")
        if self.kind == "basic" and not self.user:
            raise PacsError("basic authentication needs a user name")
        if any(c in self.secret for c in "\r\n"):
            # A header injection risk, and always a copy-paste mistake.
            raise PacsError("the secret contains a line break")

    @classmethod
    def basic(cls, user: str, password: str) -> Auth:
        """HTTP basic authentication."""
        return cls("basic", user, password)

    @classmethod
    def bearer(cls, token: str) -> Auth:
        """``Authorization: Bearer <token>`` (OAuth2 / OIDC access token)."""
        return cls("bearer", None, token)

    def __repr__(self) -> str:
        who = f", user={self.user!r}" if self.user else ""
        return f"Auth(kind={self.kind!r}{who}, secret='***')"

    __str__ = __repr__

    def requests_auth(self) -> Any:
        """The ``requests`` auth object (requests drops it on redirects to another host)."""
        import requests

        if self.kind == "basic":
            return requests.auth.HTTPBasicAuth(self.user or "", self.secret)
        token = self.secret

        class Bearer(requests.auth.AuthBase):
            def __call__(self, r: Any) -> Any:
                r.headers["Authorization"] = f"Bearer {token}"
                return r

            def __repr__(self) -> str:
                return "Bearer('***')"

        return Bearer()


def read_secret_file(path: str | os.PathLike[str], what: str, strict: bool = True) -> str:
    """First line of ``path``, stripped; PacsError if unreadable, empty or open to others."""
    p = Path(path).expanduser()
    try:
        mode = p.stat().st_mode
        with p.open(encoding="utf-8") as f:
            line = f.readline()
    except OSError as err:
        raise PacsError(f"cannot read the {what} file {p}: {err.strerror or err}") from None
    except UnicodeDecodeError:
        raise PacsError(f"the {what} file {p} is not UTF-8 text") from None
    if os.name == "posix" and mode & (stat.S_IRGRP | stat.S_IROTH):
        msg = (
            f"the {what} file {p} is readable by group/others (mode {stat.S_IMODE(mode):o}): "
            f"run `chmod 600 {p}` (Kubernetes secret volume: defaultMode 0400)"
        )
        if strict:
            raise PacsError(msg)
        log.warning(msg)
    secret = line.strip()
    if not secret:
        raise PacsError(f"the {what} file {p} is empty")
    return secret


def load_auth(
    token_file: str | os.PathLike[str] | None = None,
    user: str | None = None,
    password_file: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] = os.environ,
    *,
    strict_permissions: bool = True,
) -> Auth | None:
    """Credentials from files (given) or else the environment; None when there are none.

    Parameters
    ----------
    token_file
        File whose first line is a bearer token.
    user
        Basic-auth user (default ``$MEDAI_PACS_USER``).
    password_file
        File whose first line is the password (default ``$MEDAI_PACS_PASSWORD``).
    env
        Where the ``MEDAI_PACS_*`` variables are looked up.
    strict_permissions
        Refuse secret files readable by group/others (else only warn).

    Returns
    -------
    Auth or None
        PacsError when the pieces are contradictory or incomplete.
    """
    if token_file is not None:
        if password_file is not None or user:
            raise PacsError("give either a token file or a user/password, not both")
        return Auth.bearer(read_secret_file(token_file, "token", strict_permissions))
    user = user or env.get(ENV_USER) or None
    if password_file is not None:
        if not user:
            raise PacsError(f"a password file needs a user name (--user or ${ENV_USER})")
        return Auth.basic(user, read_secret_file(password_file, "password", strict_permissions))
    token, password = env.get(ENV_TOKEN) or None, env.get(ENV_PASSWORD) or None
    if token and (user or password):
        raise PacsError(f"both ${ENV_TOKEN} and a user/password are set: keep one")
    if token:
        return Auth.bearer(token.strip())
    if user and password:
        return Auth.basic(user, password.strip("\r\n"))
    if user:
        raise PacsError(f"user {user!r} has no password: set ${ENV_PASSWORD} or a password file")
    if password:
        raise PacsError(f"${ENV_PASSWORD} is set without a user: set ${ENV_USER}")
    return None
