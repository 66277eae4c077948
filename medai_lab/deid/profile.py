"""PS3.15 Annex E profile compiled from the shipped table for one choice of options.

The table (``data/confidentiality_profile_attributes.json``) says, per attribute, the Basic
Profile action and the action under each option; nothing here restates it. A
:class:`Profile` resolves the compound codes and the selected options once, into a plain
``tag -> action`` dict, so the per-element work while de-identifying is one lookup.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from medai_lab.errors import MedaiError

ACTIONS = frozenset("XZDKCU")


@cache
def load_data(name: str) -> Any:
    """A JSON table shipped in ``medai_lab/deid/data``."""
    path = resources.files("medai_lab.deid").joinpath("data").joinpath(name)
    return json.loads(path.read_text(encoding="utf-8"))


def table() -> list[dict[str, str]]:
    """The 621 rows of PS3.15 Table E.1-1."""
    return load_data("confidentiality_profile_attributes.json")


def option_names() -> list[str]:
    """Option names in precedence order (``retain-safe-private``, ...)."""
    return [o["name"] for o in load_data("options.json")["options"]]


def parse_tag(text: str) -> tuple[str, str]:
    """``"(0010,0010)"`` -> ``("0010", "0010")``, patterns keep their ``X``/``G`` letters."""
    inner = text.strip()[1:10]
    return inner[:4].upper(), inner[5:9].upper()


class OptionError(MedaiError):
    """Unknown or contradictory de-identification options."""


def _normalise(options: Iterable[str]) -> tuple[str, ...]:
    known = option_names()
    chosen = []
    for raw in options:
        name = raw.strip().lower().replace("_", "-").replace(" ", "-")
        name = name.removesuffix("-option")
        if name not in known:
            choices = ", ".join(known)
            raise OptionError(f"unknown de-identification option {raw!r}; choose from: {choices}")
        chosen.append(name)
    for group in load_data("options.json")["exclusive"]:
        if sum(n in chosen for n in group) > 1:
            raise OptionError("options " + " and ".join(group) + " exclude each other")
    return tuple(n for n in known if n in chosen)


@dataclass(frozen=True)
class Profile:
    """Resolved actions for one set of options.

    ``actions`` maps concrete tags to one of X, Z, D, K, C, U. ``curves`` and ``overlays``
    hold the actions for the repeating groups (50xx,xxxx) and (60xx,3000/4000); ``private``
    is X, or C for Retain Safe Private.
    """

    options: tuple[str, ...] = ()
    actions: dict[int, str] = field(default_factory=dict, repr=False)
    curves: str = "X"
    overlays: dict[int, str] = field(default_factory=dict, repr=False)
    private: str = "X"

    @classmethod
    def build(cls, options: Iterable[str] = ()) -> Profile:
        chosen = _normalise(options)
        columns = {o["name"]: o["column"] for o in load_data("options.json")["options"]}
        compound = load_data("rules.json")["compound"]
        actions: dict[int, str] = {}
        curves, overlays, private = "X", {}, "X"
        for row in table():
            code = row["basicProfile"]
            for name in chosen:
                if columns[name] in row:
                    code = row[columns[name]]
                    break
            action = compound.get(code, code)
            if action not in ACTIONS:
                raise MedaiError(f"profile table has unknown action {code!r} for {row['tag']}")
            group, elem = parse_tag(row["tag"])
            if "WHERE" in row["tag"]:
                private = action
            elif group == "50XX":
                curves = action
            elif group == "60XX":
                overlays[int(elem, 16)] = action
            else:
                actions[int(group + elem, 16)] = action
        return cls(chosen, actions, curves, overlays, private)

    def has(self, option: str) -> bool:
        return option in self.options

    @property
    def date_mode(self) -> str:
        """``remove`` (basic), ``keep`` (full dates) or ``shift`` (modified dates)."""
        if self.has("retain-full-dates"):
            return "keep"
        if self.has("retain-modified-dates"):
            return "shift"
        return "remove"

    def describe(self) -> list[str]:
        """DeidentificationMethod values: the profile, then each option (each <= 64 chars)."""
        data = load_data("options.json")
        meanings = {o["name"]: o["meaning"] for o in data["options"]}
        return [data["profile"]["meaning"], *(meanings[n] for n in self.options)]

    def codes(self) -> list[tuple[str, str]]:
        """(code value, meaning) from CID 7050 for the profile and each selected option."""
        data = load_data("options.json")
        by_name = {o["name"]: (o["code"], o["meaning"]) for o in data["options"]}
        profile = (data["profile"]["code"], data["profile"]["meaning"])
        return [profile, *(by_name[n] for n in self.options)]
