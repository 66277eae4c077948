"""Who may hold how many GPUs: per-server count, per-user cap, per-group quotas, messages.

The policy is pure data and decisions; the allocator applies it inside one locked transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

#: The ``group_quotas`` key that applies to users who are in no group with a quota.
OTHERS = "*"


@dataclass(frozen=True)
class Policy:
    """GPU allocation policy.

    Attributes
    ----------
    gpus_per_server
        Units one server asks for (whole GPUs, MIG instances or shares).
    max_per_user
        Units one user may hold over all their servers at once.
    group_quotas
        ``{group: units}``: at most this many units held at once by the group's members.
        A user in several quota groups is charged to the one with the most room left;
        ``"*"`` limits users in no quota group. Groups without a quota are unlimited.
    """

    gpus_per_server: int = 1
    max_per_user: int = 1
    group_quotas: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.gpus_per_server < 1:
            raise ValueError("gpus_per_server must be at least 1")
        if self.max_per_user < self.gpus_per_server:
            object.__setattr__(self, "max_per_user", self.gpus_per_server)
        for group, quota in self.group_quotas.items():
            if int(quota) < 0:
                raise ValueError(f"quota of group {group!r} must be >= 0")

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (see :meth:`from_dict`)."""
        return {
            "gpus_per_server": self.gpus_per_server,
            "max_per_user": self.max_per_user,
            "group_quotas": dict(self.group_quotas),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Policy:
        """Build from :meth:`to_dict` output (missing keys take defaults)."""
        data = dict(data or {})
        return cls(
            gpus_per_server=int(data.get("gpus_per_server", 1)),
            max_per_user=int(data.get("max_per_user", data.get("gpus_per_server", 1))),
            group_quotas={str(k): int(v) for k, v in dict(data.get("group_quotas", {})).items()},
        )

    def charge_group(
        self, groups: Iterable[str], group_usage: Mapping[str, int], want: int
    ) -> tuple[str | None, str | None]:
        """Pick the quota group to charge.

        Parameters
        ----------
        groups
            The user's groups.
        group_usage
            Units currently charged to each group.
        want
            Units the new server needs.

        Returns
        -------
        (group, refusal)
            ``group`` to charge (None when no quota applies), or a refusal message.
        """
        quota_groups = [g for g in sorted(set(groups)) if g in self.group_quotas]
        if not quota_groups and OTHERS in self.group_quotas:
            quota_groups = [OTHERS]
        if not quota_groups:
            return None, None
        room = {g: self.group_quotas[g] - group_usage.get(g, 0) for g in quota_groups}
        best = max(quota_groups, key=lambda g: (room[g], g))
        if room[best] >= want:
            return best, None
        label = "users in no group" if best == OTHERS else f"group {best!r}"
        used, quota = group_usage.get(best, 0), self.group_quotas[best]
        return None, f"the GPU quota of {label} is used up ({used} of {quota} in use)"


def cpu_message(reason: str) -> str:
    """The message a user sees when their server gets the CPU-only profile."""
    return (
        f"No GPU for this server: {reason}. It runs with the CPU-only profile "
        "(CUDA_VISIBLE_DEVICES=-1). Stop it and start it again later to get a GPU, "
        "or ask an instructor."
    )
