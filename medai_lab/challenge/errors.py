"""Errors of hackathon mode: each ends in one clear line in the CLI."""

from __future__ import annotations

from medai_lab.errors import MedaiError


class ChallengeError(MedaiError):
    """A challenge, submission or leaderboard request that cannot be carried out."""


class SpecError(ChallengeError):
    """The challenge specification (YAML) is invalid."""


class QuotaError(ChallengeError):
    """A team has used up its submissions for the day."""
