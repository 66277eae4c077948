"""Where and how the challenge Jobs run: namespace, image, user, claims (defaults in data/).

Every value is checked once (:meth:`KubeOptions.checked`); a bad one is one line of
:class:`KubeError`, before anything is written.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from medai_lab.challenge.errors import ChallengeError
from medai_lab.challenge.kube.names import DNS_LABEL, DNS_SUBDOMAIN

_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?$")
_IMAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@-]*$")
_RESOURCE = re.compile(r"^([a-z0-9.-]+/)?[a-z0-9][a-z0-9._-]*$")


class KubeError(ChallengeError):
    """Settings of the Kubernetes manifests that cannot be used."""


@functools.lru_cache(maxsize=1)
def defaults() -> dict[str, Any]:
    """The packaged defaults (``data/defaults.yaml``)."""
    import yaml

    text = resources.files(__package__).joinpath("data/defaults.yaml").read_text("utf-8")
    data = yaml.safe_load(text)
    assert isinstance(data, dict)
    return data


def _default(key: str) -> Any:
    return field(default_factory=lambda: defaults()[key])


@dataclass(frozen=True)
class KubeOptions:
    """Settings of the generated manifests.

    Attributes
    ----------
    namespace
        Namespace of the Jobs, the evaluator and the challenge claim (one namespace: a pod
        can only mount claims of its own namespace).
    image
        Image with medai-lab installed (the single-user image of the hub).
    run_as_user, run_as_group
        Non-root user and group of both containers: the evaluator's account, which owns the
        challenge folder (the data claims must be readable by it).
    data_claim
        Existing claim with the phases' images and labels (default ``medai-<name>-hidden-data``).
    labels_claim
        Existing claim with the labels, when they live apart from the images (default:
        ``data_claim``).
    data_root
        Folder at which the evaluator sees ``data_claim`` (and ``labels_claim``); phase folders
        become sub-paths of it. Default: the deepest folder holding every phase folder.
    challenge_claim
        Claim holding the challenge folder (default ``medai-<name>-challenge``, generated).
    storage_class
        Storage class of the generated challenge claim (None: the cluster default).
    """

    namespace: str = _default("namespace")
    image: str = _default("image")
    image_pull_policy: str = _default("image_pull_policy")
    run_as_user: int = _default("run_as_user")
    run_as_group: int = _default("run_as_group")
    gpu_resource: str = _default("gpu_resource")
    gpu_tolerations: tuple[dict[str, str], ...] = field(
        default_factory=lambda: tuple(defaults()["gpu_tolerations"])
    )
    ttl_after_finished_s: int = _default("ttl_after_finished_s")
    score_cpus: int = _default("score_cpus")
    score_memory_mb: int = _default("score_memory_mb")
    score_time_s: int = _default("score_time_s")
    challenge_storage: str = _default("challenge_storage")
    data_claim: str | None = None
    labels_claim: str | None = None
    data_root: str | None = None
    challenge_claim: str | None = None
    storage_class: str | None = None
    node_selector: dict[str, str] = field(default_factory=dict)

    def checked(self) -> KubeOptions:
        """``self`` if every value can be used, else :class:`KubeError` naming the first."""
        if not DNS_LABEL.match(self.namespace) or len(self.namespace) > 63:
            raise KubeError(f"namespace {self.namespace!r}: use lower-case letters, digits, '-'")
        if not _IMAGE.match(self.image):
            raise KubeError(f"image {self.image!r} is not an image reference")
        if self.image_pull_policy not in ("Always", "IfNotPresent", "Never"):
            raise KubeError("image pull policy must be Always, IfNotPresent or Never")
        for name in ("run_as_user", "run_as_group"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise KubeError(f"{name.replace('_', '-')} must be a user/group id >= 1 (not root)")
        for name in ("ttl_after_finished_s", "score_cpus", "score_memory_mb", "score_time_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise KubeError(f"{name.replace('_', '-')} must be a whole number >= 1")
        if not _RESOURCE.match(self.gpu_resource):
            raise KubeError(f"GPU resource {self.gpu_resource!r} is not a resource name")
        if not _QUANTITY.match(self.challenge_storage):
            raise KubeError(f"storage size {self.challenge_storage!r}: use e.g. 20Gi")
        for what in ("data_claim", "labels_claim", "challenge_claim", "storage_class"):
            value = getattr(self, what)
            if value is not None and (not DNS_SUBDOMAIN.match(value) or len(value) > 253):
                raise KubeError(f"{what.replace('_', ' ')} {value!r} is not a Kubernetes name")
        return self

    def replace(self, **changes: Any) -> KubeOptions:
        """A copy with ``changes`` (None values keep the current setting), checked."""
        given = {k: v for k, v in changes.items() if v is not None}
        return dataclasses.replace(self, **given).checked()
