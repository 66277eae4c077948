"""Heart template: heart and left atrium; MSD Task02_Heart is MR, so intensities are z-scored.

Defaults live in ``configs/task/heart.yaml`` (labels, intensity, spacing, patch); presets and
overrides work as for every task. Run ``python -m medai_lab.tasks.heart --preset smoke``.
"""

from __future__ import annotations

from medai_lab.tasks.runner import template

TASK = "heart"
train, main = template(TASK)

if __name__ == "__main__":
    raise SystemExit(main())
