"""Liver template: liver and liver tumours on CT (MSD Task03_Liver).

Defaults live in ``configs/task/liver.yaml`` (labels, intensity, spacing, patch); presets and
overrides work as for every task. Run ``python -m medai_lab.tasks.liver --preset smoke``.
"""

from __future__ import annotations

from medai_lab.tasks.runner import template

TASK = "liver"
train, main = template(TASK)

if __name__ == "__main__":
    raise SystemExit(main())
