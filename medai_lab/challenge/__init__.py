"""Hackathon mode: models travel to hidden data, run in a sandbox, and land on a leaderboard.

Importing this package is light (no torch, MONAI or mlflow; they load inside the sandbox or
when scores are logged).

>>> from medai_lab.challenge import Challenge
>>> ch = Challenge.create_from_data("hack", "liver", validation="pub", test="hid")  # doctest: +SKIP
>>> ch.submit("liver.ts", team="owls")                                       # doctest: +SKIP
>>> ch.evaluate(); ch.leaderboard("test")                                     # doctest: +SKIP
"""

from medai_lab.challenge.api import Challenge, describe_result, resolve_team
from medai_lab.challenge.errors import ChallengeError, QuotaError, SpecError
from medai_lab.challenge.spec import Limits, Phase, RankKey, Spec, load_spec, parse_spec

__all__ = [
    "Challenge",
    "ChallengeError",
    "Limits",
    "Phase",
    "QuotaError",
    "RankKey",
    "Spec",
    "SpecError",
    "describe_result",
    "load_spec",
    "parse_spec",
    "resolve_team",
]
