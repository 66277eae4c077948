"""Submissions without access to the challenge folder: a JupyterHub service and its clients.

The service (:mod:`.app`, started by ``python -m medai_lab.challenge.service``) runs as the
evaluator's account, keeps the folder private (:mod:`.privacy`) and takes submissions from
hub users over HTTP; :mod:`.client` is what ``medai-lab challenge submit --hub`` and the
JupyterLab server extension use. Submissions travel as one zip archive (:mod:`.archive`).
"""

SERVICE = "challenge"  # the hub service's name: /services/challenge, access:services!service=...
