"""Embedding shift: an audio encoder reads the protected song as a decoy style.

Text- or style-conditioned generators (MusicLDM, AudioLDM, Stable Audio) learn pairs of a
condition, given by a pretrained encoder, and the music. Noise that moves the encoder's
reading of a song toward a decoy makes a model fine-tuned on the released song learn the
song under the wrong condition, and the song's real style stays unlearned. The decoy here is
a direction u on the unit sphere drawn from the song's key (a style no real music has), so no
decoy song has to ship with the project:

    loss = mean over encoders of (1 − cos(E(x + δ), u)) / (1 − cos(E(x), u))    per example

1 on the clean music, 0 when the encoder reads exactly the decoy. Encoders are models with
`embed(waveform (B, N)) → (B, D)`: the zoo's contrastive encoder, the conditioner of its
diffusion model.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from harmonycloak.errors import ModelError


class EmbeddingShift:
    name = "embedding-shift"
    trains_models = False  # the encoder is public and frozen
    needs_models = True
    meta_test = False
    reads_model_gradients = False

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self._decoys: dict[int, Tensor] = {}

    def decoy(self, dimensions: int) -> Tensor:
        """The unit decoy direction u (dimensions,) of this key."""
        if dimensions not in self._decoys:
            generator = torch.Generator().manual_seed(self.seed)
            self._decoys[dimensions] = F.normalize(torch.randn(dimensions, generator=generator), dim=0)
        return self._decoys[dimensions]

    def reference(self, models: Sequence, clean: Tensor, segment_ids: Tensor) -> list[tuple[Tensor, Tensor]]:
        """Per encoder: (decoy u (D,), clean distance 1 − cos(E(x), u) (B,))."""
        references = []
        with torch.no_grad():
            for model in models:
                if not hasattr(model, "embed"):
                    raise ModelError(f"the embedding-shift objective needs an audio encoder; "
                                     f"'{getattr(model, 'family', type(model).__name__)}' has none")
                embedding = model.embed(clean)
                decoy = self.decoy(embedding.shape[-1]).to(embedding.device)
                references.append((decoy, (1.0 - F.cosine_similarity(embedding, decoy[None], dim=-1)).clamp(min=1e-6)))
        return references

    def loss(self, models: Sequence, protected: Tensor, reference: list[tuple[Tensor, Tensor]]) -> Tensor:
        distances = [(1.0 - F.cosine_similarity(model.embed(protected), decoy[None], dim=-1)) / clean_distance
                     for model, (decoy, clean_distance) in zip(models, reference)]
        return torch.stack(distances).mean(dim=0)
