"""The workshop authenticator: NativeAuthenticator (sign-up, admin approval) on JupyterHub 6.

NativeAuthenticator 1.3's login handler still times logins with ``self.statsd``, which
JupyterHub 6 removed (every login answered 500), and its ``_render`` refuses the extra
arguments JupyterHub 6 passes when it renders a login error. ``MedaiNativeAuthenticator``
serves the same pages with a login handler that has both.
"""

from __future__ import annotations

from typing import Any

from nativeauthenticator import NativeAuthenticator
from nativeauthenticator.handlers import LoginHandler as _NativeLogin


class _NoStats:
    """Stands in for the removed statsd client: ``timer(...).start().stop(...)`` do nothing."""

    def timer(self, *_: Any, **__: Any) -> _NoStats:
        return self

    def start(self) -> _NoStats:
        return self

    def stop(self, *_: Any, **__: Any) -> None:
        return None


class CompatLoginHandler(_NativeLogin):
    """NativeAuthenticator's login page and form, working on JupyterHub 5 and 6."""

    @property
    def statsd(self) -> Any:
        return getattr(super(), "statsd", None) or _NoStats()

    def _render(self, login_error: str | None = None, username: str | None = None, **_: Any) -> Any:
        return super()._render(login_error=login_error, username=username)


class MedaiNativeAuthenticator(NativeAuthenticator):
    """NativeAuthenticator with :class:`CompatLoginHandler` at ``/hub/login``."""

    def get_handlers(self, app: Any) -> list[tuple[str, Any]]:
        return [
            (path, CompatLoginHandler if handler is _NativeLogin else handler)
            for path, handler in super().get_handlers(app)
        ]
