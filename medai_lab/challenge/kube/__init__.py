"""The challenge evaluation as Kubernetes Jobs (a hub on Zero to JupyterHub).

:func:`base_manifests` gives the shared objects of a challenge (no-network policy, accounts,
Role, claim, spec ConfigMaps); :func:`job_manifests` one submission's Job and its policy;
:mod:`.entry` is what the Job's containers run, and :func:`.collect.collect` brings a finished Job's
result into the challenge database. Importing this package is light (no torch, no kubernetes
client: manifests are plain data, applied with ``kubectl apply -f``).
"""

from medai_lab.challenge.kube.manifests import SubmissionRef, base_manifests, job_manifests
from medai_lab.challenge.kube.options import KubeError, KubeOptions

__all__ = ["KubeError", "KubeOptions", "SubmissionRef", "base_manifests", "job_manifests"]
