"""The audio cloaking problem handed to the optimiser: clean lanes, a cloak, segments, mixing.

A *lane* is one channel of one track (a stereo mix is one track of two lanes; four stereo
stems are eight lanes). Every lane gets its own noise; the surrogate models hear what an
attacker's pipeline would: the mono downmix of all tracks summed, at the working rate.

The song is cut into segments of `segment_s` (the paper's unit is the bar; a segment of a
few seconds plays that part for audio), tiling the song, the last one ending at the song's
end. They are the samples the min-min loop batches over.

Regulariser of paper Eq. 5: Σ_m w^m ‖δ^m‖₂² / ‖x^m‖₂² per segment — the noise-to-music
power ratio of lane m over the segment (1 / SNR; a floor stands in for the music in silence),
dimensionless like the optimiser's normalised loss (see `optim.minmin`). The paper writes the
norm unsquared. Squared here because the unsquared norm has a gradient of constant size as
δ → 0, which outweighs the first-order loss gain a bounded, quiet noise buys from randomly
initialised surrogates: in black-box mode the noise then collapsed to the threshold of hearing
(measured on the example song: SNR 71 dB, surrogate loss unchanged), whereas with the power
ratio it settles where its marginal gain pays for it (SNR 32 dB on the same run). Both read
the same at the unit point: a noise as strong as the music costs α. And w^m = 1 − (track m's share of the total
energy of all tracks) — the audio reading of "one minus the track's share of the cumulative
note velocity". With a single track w = 1: the formula would give 0 and switch the
regulariser off, which the paper cannot mean.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Protocol

import numpy as np
import torch
from torch import Tensor, nn

from harmonycloak.cloak.model_input import segment_starts
from harmonycloak.errors import SettingsError
from harmonycloak.resampling import resample_in_pieces
from harmonycloak.settings import SEGMENT_S


MUSIC_NORM_FLOOR = 1e-3  # L2 norm under which a segment counts as silence (≈ −100 dBFS over 2.56 s)
RENDER_PIECE_SAMPLES = 1 << 20  # the whole noise is rendered this many working-rate samples at a time (memory)


def noise_power_ratio(noise: Tensor, clean: Tensor, dims: tuple[int, ...], floor: float) -> Tensor:
    """‖δ‖² / (‖x‖² + floor²) over `dims`: the regulariser's R(δ, x) of every cloak problem.

    Shapes: noise and clean alike, e.g. (B, L, S) with dims (-1,) → (B, L).
    """
    return noise.square().sum(dim=dims) / (clean.square().sum(dim=dims) + floor**2)


def track_weights(lanes: Tensor, lane_track: Tensor) -> Tensor:
    """w^m per lane (L,): one minus the share of the lane's track in the total energy."""
    num_tracks = int(lane_track.max().item()) + 1
    if num_tracks == 1:
        return torch.ones(lanes.shape[0])
    energy = torch.zeros(num_tracks, dtype=torch.float64).index_add_(0, lane_track, lanes.double().square().sum(-1))
    share = energy / energy.sum().clamp(min=1e-30)
    return (1.0 - share[lane_track]).float()


class AudioCloak(Protocol):
    """A parameterisation of the noise δ of every lane, built on the clean lanes (L, N) at `sample_rate_hz`.

    Its parameters are unconstrained; the cloak maps them inside its bounds, so a signed
    gradient step on them never leaves the allowed range (the projection is implicit).
    """

    sample_rate_hz: int
    keeps_loudness: bool  # the flow takes from its noise the music's in-phase share (`cloak.loudness`)

    @property
    def alignment_samples(self) -> int:
        """Segments start at multiples of this (a window, a hop, a block)."""

    def noise(self, starts: Tensor, num_samples: int) -> Tensor:
        """δ of every lane in the segments starting at `starts` (B,): (B, L, num_samples)."""

    def render(self, sample_rate_hz: int, num_frames: int) -> np.ndarray:
        """The whole noise (L, num_frames) at another rate (the input file's), without gradients."""

    def active_share(self) -> float:
        """Share of the cloak's cells (windows, bins, blocks) in which noise may sound at all."""

    def parameters(self, recurse: bool = True) -> Iterator[nn.Parameter]: ...
    def to(self, *args, **kwargs) -> "AudioCloak": ...


@torch.no_grad()
def render_whole_noise(cloak: "AudioCloak", sample_rate_hz: int, num_frames: int) -> np.ndarray:
    """A cloak's whole noise from its first sample, (L, num_frames) float32 at any sample rate
    (band-limited resampling), for cloaks whose `noise` works on segments aligned to their hop."""
    working_samples = math.ceil(num_frames * cloak.sample_rate_hz / sample_rate_hz)
    align = cloak.alignment_samples
    device = next(cloak.parameters()).device
    total = -(-working_samples // align) * align

    def read(start: int, stop: int) -> np.ndarray:  # a segment's noise holds every frame that reaches it
        return cloak.noise(torch.tensor([start], device=device), stop - start)[0].float().cpu().numpy()

    # in pieces, at the working rate and at the song's: a long song's whole noise is large at either
    return resample_in_pieces(read, total, cloak.sample_rate_hz, sample_rate_hz, num_frames, RENDER_PIECE_SAMPLES, align)


class AudioCloakProblem:
    """Clean lanes + a cloak → protected model inputs per segment.

    Args:
        lanes: clean music at the working rate, (L, N).
        lane_track: track index of each lane, (L,) int; lanes of one track are its channels.
        cloak: an `AudioCloak` (dominant tone, masked spectrum, norm ball) built on the same lanes.
        segment_s: segment length in seconds (rounded to the cloak's alignment).
    """

    def __init__(self, lanes: Tensor, lane_track: Tensor, cloak: AudioCloak, segment_s: float = SEGMENT_S) -> None:
        if lane_track.shape[0] != lanes.shape[0]:
            raise SettingsError("every lane needs a track index")
        sample_rate_hz = cloak.sample_rate_hz
        align = cloak.alignment_samples
        self.segment_samples = max(round(segment_s * sample_rate_hz / align), 1) * align
        padded_length = max(-(-lanes.shape[-1] // align) * align, self.segment_samples)
        self.lanes = torch.nn.functional.pad(lanes, (0, padded_length - lanes.shape[-1]))
        self.cloak = cloak
        self.lane_track = lane_track
        self.weights = track_weights(lanes.cpu(), lane_track.cpu()).to(lanes.device)
        channels_per_track = torch.bincount(lane_track).float()
        self.downmix = 1.0 / channels_per_track[lane_track]  # (L,): mono = Σ_tracks mean over its channels
        self.starts = segment_starts(padded_length, self.segment_samples).to(lanes.device)

    @property
    def num_segments(self) -> int:
        return len(self.starts)

    def noise_parameters(self) -> list[Tensor]:
        return [p for p in self.cloak.parameters() if p.requires_grad]

    def clean_lanes(self, segment_ids: Tensor) -> Tensor:
        """(B, L, S) clean lanes of the segments."""
        segment_ids = segment_ids.to(self.starts.device)
        index = self.starts[segment_ids][:, None] + torch.arange(self.segment_samples, device=self.starts.device)
        return self.lanes[:, index].transpose(0, 1)

    def mix(self, lanes: Tensor) -> Tensor:
        """(B, L, S) lanes → (B, S) mono mix heard by the models."""
        return torch.einsum("bls,l->bs", lanes, self.downmix)

    def clean_batch(self, segment_ids: Tensor) -> Tensor:
        return self.mix(self.clean_lanes(segment_ids))

    def protected_batch(self, segment_ids: Tensor) -> tuple[Tensor, Tensor]:
        clean = self.clean_lanes(segment_ids)
        noise = self.cloak.noise(self.starts[segment_ids.to(self.starts.device)], self.segment_samples)  # (B, L, S)
        return self.mix(clean + noise), noise_power_ratio(noise, clean, (-1,), MUSIC_NORM_FLOOR) @ self.weights


class SongsProblem:
    """Several songs' problems as one, so that one optimisation batch holds segments of several songs.

    Segment i of the whole is segment i − offsets[s] of song s (songs in order). Each song keeps its
    own cloak and noise parameters; the models read batches that mix songs, and in the outer step
    they learn every song of the group, as the paper's min over θ runs over the whole protected
    set. A GPU that one song's batches leave idle does G songs' work in one pass.

    Args:
        problems: one `AudioCloakProblem` per song, with segments of one length.
    """

    def __init__(self, problems: list[AudioCloakProblem]) -> None:
        if not problems:
            raise SettingsError("optimising songs together needs at least one song")
        if len({problem.segment_samples for problem in problems}) > 1:
            raise SettingsError("songs optimised together need segments of one length (one cloak, one rate)")
        self.problems = problems
        counts = torch.tensor([problem.num_segments for problem in problems])
        self.offsets = torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)])  # (G + 1,)

    @property
    def num_segments(self) -> int:
        return int(self.offsets[-1])

    def noise_parameters(self) -> list[Tensor]:
        return [parameter for problem in self.problems for parameter in problem.noise_parameters()]

    def clean_batch(self, segment_ids: Tensor) -> Tensor:
        return self._gathered(segment_ids, lambda problem, ids: (problem.clean_batch(ids),))[0]

    def protected_batch(self, segment_ids: Tensor) -> tuple[Tensor, Tensor]:
        inputs, regulariser = self._gathered(segment_ids, lambda problem, ids: problem.protected_batch(ids))
        return inputs, regulariser

    def _gathered(self, segment_ids: Tensor, part) -> tuple[Tensor, ...]:
        """`part(song's problem, its local segment ids)` for every song the batch touches, the
        pieces put back in the order of `segment_ids` (B,)."""
        segment_ids = segment_ids.cpu()
        songs = torch.bucketize(segment_ids, self.offsets[1:], right=True)  # (B,) the song of each segment
        positions, pieces = [], []
        for song in songs.unique().tolist():
            where = (songs == song).nonzero().squeeze(1)
            positions.append(where)
            pieces.append(part(self.problems[song], segment_ids[where] - self.offsets[song]))
        order = torch.cat(positions)
        inverse = torch.empty_like(order)
        inverse[order] = torch.arange(len(order))
        return tuple(torch.cat(outputs)[inverse.to(outputs[0].device)] for outputs in zip(*pieces))
