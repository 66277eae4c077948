"""Kubernetes names and labels of a challenge's objects: deterministic, DNS-safe, no identifiers.

Objects are named from the challenge name, the phase and the submission number only
(``medai-<challenge>-<phase>-<id>``); a team appears only as a label, and only as its slug
(:func:`team_slug`). Anything shortened or changed to fit Kubernetes' rules gets six hex
digits of the original's SHA-256, so two different names never give the same object name.
"""

from __future__ import annotations

import hashlib
import re

# Job names stay short enough for the pod names the Job controller derives from them.
JOB_NAME_MAX = 52
LABEL_PREFIX = "medai-lab.io"
COMPONENT = "challenge-sandbox"
_NOT_DNS = re.compile(r"[^a-z0-9-]+")
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


def dns_label(text: str, max_len: int) -> str:
    """``text`` as a DNS-1123 label of at most ``max_len`` characters (see module docstring)."""
    clean = _NOT_DNS.sub("-", text.lower()).strip("-")
    if clean == text and len(clean) <= max_len:
        return clean
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:6]
    head = clean[: max_len - 7].rstrip("-")
    return f"{head}-{digest}" if head else digest


def team_slug(team: str) -> str:
    """A team's label value: lower-case letters, digits and '-' (``@`` and dots replaced)."""
    return dns_label(team, 40)


class Names:
    """Object names and labels of one challenge.

    Parameters
    ----------
    challenge
        The challenge name (``spec.name``).
    """

    def __init__(self, challenge: str) -> None:
        self.challenge = dns_label(challenge, 22)
        self.prefix = f"medai-{self.challenge}"

    # --- names ----------------------------------------------------------------------------

    def job(self, phase: str, submission_id: int) -> str:
        """The Job of one submission (also its NetworkPolicy)."""
        return f"{self.prefix}-{dns_label(phase, 12)}-{int(submission_id)}"

    def spec_config(self, phase: str) -> str:
        """The ConfigMap holding the phase's spec as the pods see it."""
        return f"{self.prefix}-{dns_label(phase, 12)}-spec"

    @property
    def sandbox_account(self) -> str:
        return f"{self.prefix}-sandbox"

    @property
    def evaluator_account(self) -> str:
        return f"{self.prefix}-evaluator"

    @property
    def deny_all(self) -> str:
        return f"{self.prefix}-no-network"

    @property
    def challenge_claim(self) -> str:
        return f"{self.prefix}-challenge"

    @property
    def data_claim(self) -> str:
        return f"{self.prefix}-hidden-data"

    # --- labels ---------------------------------------------------------------------------

    def common(self) -> dict[str, str]:
        """Labels of every object of this challenge."""
        return {
            "app.kubernetes.io/name": "medai-lab",
            "app.kubernetes.io/part-of": "medai-lab",
            f"{LABEL_PREFIX}/challenge": self.challenge,
        }

    def sandbox_selector(self) -> dict[str, str]:
        """Labels every submission pod of this challenge carries (the base NetworkPolicy's)."""
        return {
            "app.kubernetes.io/component": COMPONENT,
            f"{LABEL_PREFIX}/challenge": self.challenge,
        }

    def run_labels(self, phase: str, submission_id: int, team: str) -> dict[str, str]:
        """Labels of one submission's Job and pods."""
        return {
            **self.common(),
            **self.sandbox_selector(),
            f"{LABEL_PREFIX}/phase": dns_label(phase, 40),
            f"{LABEL_PREFIX}/submission": str(int(submission_id)),
            f"{LABEL_PREFIX}/team": team_slug(team),
        }
