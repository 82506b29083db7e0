"""Models along a fine-tune's path: copies that learned the songs for more and more steps."""

import numpy as np
import pytest
import torch

from harmonycloak.errors import SettingsError
from harmonycloak.optim.finetune import FinetuneRecipe
from harmonycloak.optim.trajectory import along_fine_tune
from harmonycloak.settings import WORKING_RATE_HZ
from harmonycloak.zoo import load_zoo_model

RECIPE = FinetuneRecipe(learning_rate=1e-4, batch_segments=4, segment_s=0.32, augment_gain=False, augment_speed=False)


def melody(seconds: float = 1.28, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    time = np.arange(round(seconds * WORKING_RATE_HZ)) / WORKING_RATE_HZ
    notes = rng.choice([220.0, 277.2, 329.6, 440.0], size=8)
    return (0.3 * np.sin(2 * np.pi * notes[(time * 8 / seconds).astype(int) % 8] * time)).astype(np.float32)


def clean_loss(model, song: np.ndarray) -> float:
    segments = torch.from_numpy(song[: len(song) // 5120 * 5120].reshape(-1, 5120))  # 0.32 s each
    with torch.no_grad():
        return float(model.training_loss(segments, torch.Generator().manual_seed(0)))


def test_each_stage_has_learned_the_songs_more_and_the_model_itself_is_untouched():
    model, song = load_zoo_model("ar-gru"), melody()
    before = [p.detach().clone() for p in model.parameters()]
    copies = along_fine_tune([model], [song], (5, 20), seed=0, recipe=RECIPE)
    assert len(copies) == 2 and all(not c.training for c in copies)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    losses = [clean_loss(m, song) for m in (model, *copies)]
    assert losses[0] > losses[1] > losses[2]  # the later stage fits the song better
    # the later stage went on from the earlier one: it is nearer to it than to the base
    distance = [sum(float((a - b).detach().square().sum()) for a, b in zip(x.parameters(), y.parameters()))
                for x, y in ((copies[1], copies[0]), (copies[1], model))]
    assert distance[0] < distance[1]


def test_copies_come_model_by_model_and_the_same_seed_gives_the_same_copies():
    models, song = [load_zoo_model("ar-gru"), load_zoo_model("ar-tcn")], melody(seed=1)
    first = along_fine_tune(models, [song], (2,), seed=4, recipe=RECIPE)
    again = along_fine_tune(models, [song], (2,), seed=4, recipe=RECIPE)
    assert [m.family for m in first] == ["ar-gru", "ar-tcn"]
    assert all(torch.equal(a, b) for x, y in zip(first, again) for a, b in zip(x.parameters(), y.parameters()))


@pytest.mark.parametrize("stages", [(0, 5), (5, 5), (2.5,)])
def test_stages_must_be_distinct_whole_numbers_of_steps(stages):
    with pytest.raises(SettingsError, match="stages"):
        along_fine_tune([load_zoo_model("ar-gru")], [melody()], stages, seed=0, recipe=RECIPE)
