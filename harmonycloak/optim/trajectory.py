"""Models along a fine-tune's path: what an attacker's model looks like while it learns the songs.

An objective read at the pretrained weights alone protects the first training step; the
attacker takes a hundred or more. Copies of each model fine-tuned on the clean songs for a
few numbers of steps stand in for the weights the attacker passes through, so that noise
optimised against all of them (an ensemble over the path, as poisoning against training
from scratch ensembles checkpoints) works on the later steps too.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from harmonycloak.errors import SettingsError
from harmonycloak.models.interface import GenerativeModel
from harmonycloak.optim.finetune import FinetuneRecipe, finetune

SEED_STRIDE = 1000  # model i's stage s draws its crops from seed + SEED_STRIDE·i + s


def along_fine_tune(models: Sequence[GenerativeModel], songs: Sequence[np.ndarray], stages_steps: Sequence[int],
                    seed: int, recipe: FinetuneRecipe = FinetuneRecipe()) -> list[GenerativeModel]:
    """Copies of every model fine-tuned on `songs` (mono (N,) float32 at the working rate) by
    `recipe` for each number of steps in `stages_steps`, in eval mode; the models themselves
    are untouched.

    One copy per model walks the path and is copied at each stage; its optimiser starts afresh
    at every stage (a restart of Adam's moments, not of the weights).

    Returns:
        The copies model by model, each model's stages in increasing order of steps.

    Raises:
        SettingsError: a stage is not a whole number of steps ≥ 1, or two stages are equal.
    """
    stages = sorted(stages_steps)
    if any(not isinstance(steps, int) or steps < 1 for steps in stages) or len(set(stages)) != len(stages):
        raise SettingsError(f"the fine-tune's stages must be distinct whole numbers of steps ≥ 1, not {stages_steps}")
    copies = []
    for index, model in enumerate(models):
        walker, done = copy.deepcopy(model), 0
        for stage, steps in enumerate(stages):
            finetune(walker, songs, replace(recipe, steps=steps - done), seed + SEED_STRIDE * index + stage)
            done = steps
            copies.append(copy.deepcopy(walker).eval())
    return copies
