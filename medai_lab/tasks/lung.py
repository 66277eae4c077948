"""Lung template: lungs and lung nodules on CT (MSD Task06_Lung; real MSD marks only tumours).

Defaults live in ``configs/task/lung.yaml`` (labels, intensity, spacing, patch); presets and
overrides work as for every task. Run ``python -m medai_lab.tasks.lung --preset smoke``.
"""

from __future__ import annotations

from medai_lab.tasks.runner import template

TASK = "lung"
train, main = template(TASK)

if __name__ == "__main__":
    raise SystemExit(main())
