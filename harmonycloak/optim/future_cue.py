"""Future-cue noise: a shortcut to the next frame, keyed per song.

In next-frame (next-token, denoising) training the target is the music itself, so noise that
carries no information about what the model must predict cannot become a shortcut, and
error-minimising noise does little. This objective gives the noise that information: in each
frame t and coarse band b, the noise adds energy when the music's energy in band b will
*rise* from frame t to t + 1, and stays away when it will fall — or the other way round, as
the song's key k_b = ±1 says. A model trained on the protected song can lower its loss by
reading the cue instead of learning the music; on the clean song (and on other songs, whose
keys differ) the cue is gone, and so is what it learned instead of the music.

    cue[t, b]       = k_b · sign(E_x[t + 1, b] − E_x[t, b])   where the level moves by ≥ CHANGE_DB, else 0
    lift_dB[t, b]   = 10 log10( E_{x+δ}[t, b] / E_x[t, b] )                        what δ adds
    loss            = 1 − mean_{t,b} cue[t, b] · tanh(lift_dB[t, b] / CUE_DB)          per example

The loss reads 1 on the clean music (no lift) and falls towards 0 as the noise lifts the
cued cells by CUE_DB or more and leaves the others alone; tanh keeps it bounded, so a loud
cue in a few cells cannot stand in for a cue everywhere. The energies are those of a coarse
log-mel front end with the models' 10 ms frames, so the cue sits in what a mel model reads.
Needs no model: it runs in both modes and in a fraction of min-min's time.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from harmonycloak.models.frontend import FrontendConfig, LogMelFrontend
from harmonycloak.models.interface import GenerativeModel

CUE_BANDS = 8  # coarse mel bands the cue is written in
CUE_DB = 3.0  # the lift (dB) at which a cued cell counts as two thirds written (tanh(1) ≈ 0.76)
CHANGE_DB = 1.0  # a band's level must move this much to the next frame to be cued (steady notes are not)


class FutureCue:
    name = "future-cue"
    trains_models = False
    needs_models = False
    meta_test = False
    reads_model_gradients = False

    def __init__(self, seed: int = 0, bands: int = CUE_BANDS, cue_db: float = CUE_DB,
                 change_db: float = CHANGE_DB) -> None:
        self.frontend = LogMelFrontend(FrontendConfig(n_mels=bands))
        generator = torch.Generator().manual_seed(seed)
        self.key = torch.randint(0, 2, (bands,), generator=generator).float() * 2 - 1  # (bands,) ±1
        self.cue_db, self.change_db = cue_db, change_db
        # The front end maps log10 energy to (log10 E + h) / h with h = −log10(floor)/2: one unit is 10·h dB.
        self.db_per_unit = -5.0 * torch.log10(torch.tensor(self.frontend.config.log_floor)).item()

    def band_levels(self, waveform: Tensor) -> Tensor:
        """(B, N) at the working rate → coarse band levels (B, T, bands) in the front end's units."""
        frontend = self.frontend.to(waveform.device)
        return frontend(waveform)

    def reference(self, models: Sequence[GenerativeModel], clean: Tensor, segment_ids: Tensor) -> tuple[Tensor, Tensor]:
        """(clean band levels (B, T, bands), cue (B, T − 1, bands) of ±1 and 0 where the level holds)."""
        with torch.no_grad():
            levels = self.band_levels(clean)
            change_db = (levels[:, 1:] - levels[:, :-1]) * self.db_per_unit
            cue = torch.sign(change_db) * (change_db.abs() >= self.change_db) * self.key.to(levels.device)
        return levels, cue

    def lift_db(self, protected: Tensor, clean_levels: Tensor) -> Tensor:
        """What the noise adds to each frame and band, dB (B, T, bands)."""
        return (self.band_levels(protected) - clean_levels) * self.db_per_unit

    def loss(self, models: Sequence[GenerativeModel], protected: Tensor, reference: tuple[Tensor, Tensor]) -> Tensor:
        clean_levels, cue = reference
        written = torch.tanh(self.lift_db(protected, clean_levels)[:, :-1] / self.cue_db)
        return 1.0 - (cue * written).mean(dim=(1, 2))
