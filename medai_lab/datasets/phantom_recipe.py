"""Which phantom scene a task draws and which drawn structure each of its labels is.

The recipe is data in the task's YAML (see :mod:`medai_lab.catalogue`); the scenes are code in
:mod:`medai_lab.datasets.phantom`. This module checks one against the other.
"""

from __future__ import annotations

from medai_lab import catalogue
from medai_lab.catalogue import PhantomRecipe
from medai_lab.errors import MedaiError

__all__ = ["SCENES", "SCENE_STRUCTURES", "STRUCTURES", "phantom_recipe", "phantom_tasks"]

# Scenes are code (drawing functions); their order keys each scene's random stream.
SCENES: tuple[str, ...] = ("lung", "liver", "heart")
# Structures the scenes label while drawing (their id in the scene's label map).
STRUCTURES: dict[str, int] = {
    "lung": 1,
    "nodule": 2,
    "liver": 3,
    "liver_tumour": 4,
    "heart": 5,
    "left_atrium": 6,
    "spleen": 7,
}
SCENE_STRUCTURES: dict[str, tuple[str, ...]] = {
    "lung": ("lung", "nodule", "heart", "left_atrium"),
    "liver": ("liver", "liver_tumour", "spleen", "lung", "heart", "left_atrium"),
    "heart": ("heart", "left_atrium", "lung"),
}


def phantom_tasks() -> tuple[str, ...]:
    """Catalogue tasks that have a phantom recipe (parses each task file)."""
    return tuple(n for n in catalogue.names() if catalogue.get(n).phantom is not None)


def phantom_recipe(task: str) -> PhantomRecipe:
    """The task's phantom recipe, checked against the scenes; one error line otherwise."""
    if catalogue.find(task) is None:
        choices = ", ".join(catalogue.names())
        raise MedaiError(f"unknown phantom task {task!r}; choose one of: {choices}")
    recipe = catalogue.get(task).phantom
    if recipe is None:
        raise MedaiError(f"task {task!r} has no phantom recipe (phantom: in its YAML)")
    if recipe.scene not in SCENES:
        raise MedaiError(
            f"task {task!r}: unknown phantom scene {recipe.scene!r}; "
            f"choose one of: {', '.join(SCENES)}"
        )
    for _, structure in recipe.labels:
        if structure not in SCENE_STRUCTURES[recipe.scene]:
            drawn = ", ".join(SCENE_STRUCTURES[recipe.scene])
            raise MedaiError(
                f"task {task!r}: the {recipe.scene} scene draws no {structure!r} (it draws {drawn})"
            )
    return recipe
