"""Noise held to the band check as `verify` measures it, at the song's own rate.

The masked cloak's band rules keep each Bark band's noise under its lowest masking threshold,
with room for bins brought into phase (`cloak.masked`). That holds for noise placed at random
under the bounds; optimised noise goes further. On 15 s of a recording (44.1 kHz stereo) noise
with every coefficient at its bound and random phases reads band NMR p95 −7.2 dB, the reverse
gradient's noise under the same bounds −2.2 dB: the optimiser gathers each band's power into
the frames and phases where the check, which analyses the song at its own rate in longer
frames than the cloak's, reads it loudest.

So the written noise is measured with the check's own analysis (`metrics.perceptual`:
masking threshold of the music, noise level per bin, noise power per 1-Bark band over the
band's lowest threshold), and every band of every frame that reads over `limit_db` is turned
down to `AIM_BELOW_LIMIT_DB` under it: its bins are scaled in the check's STFT and the noise is
resynthesised (inverse STFT, the check's frames). Resynthesis spreads a change into the
overlapping frames, so this is done `ROUNDS` times. Bands that pass are not touched, and a
piece of the song with no band over the limit is left bit for bit.

The song is worked on `PIECE_S` at a time, each piece read with `MARGIN_S` on both sides (more
than temporal masking reaches, 0.5 s) and only its middle written back.

Shapes: L lanes (channels), N samples, J frames, K bins, Z bands.
"""

from __future__ import annotations

import numpy as np
import torch

from harmonycloak.memory import release_freed_memory
from harmonycloak.metrics.perceptual import band_noise_to_mask_ratio_db
from harmonycloak.psycho import functional as PF
from harmonycloak.psycho.masker import PsychoacousticModel

AIM_BELOW_LIMIT_DB = 1.0  # a band over the limit is turned down to this far under it (resynthesis spreads)
ROUNDS = 4  # measure, turn down, resynthesise: at most this many times per piece
PIECE_S = 10.0  # the song is checked this many seconds at a time (memory)
MARGIN_S = 1.0  # each piece is read with this much on both sides (temporal masking reaches 0.5 s)


def held_to_band_check(noise: np.ndarray, music: np.ndarray, sample_rate_hz: int, limit_db: float,
                       out: np.ndarray | None = None) -> np.ndarray:
    """`noise` (L, N) with every band of every frame that the band check reads over `limit_db`
    (band NMR against `music` (L, N), at `sample_rate_hz`) turned down under it; float32 (L, N),
    written into `out` when given (it may be `noise` itself)."""
    out = np.array(noise, dtype=np.float32) if out is None else out
    if out is not noise:
        out[...] = noise
    model = PsychoacousticModel(sample_rate_hz)
    piece, margin = round(PIECE_S * sample_rate_hz), round(MARGIN_S * sample_rate_hz)
    num_samples = out.shape[-1]
    for start in range(0, num_samples, piece):
        release_freed_memory()  # what was freed before this piece (the last piece's scratch): a long song's peak
        stop = min(start + piece, num_samples)
        first, last = max(start - margin, 0), min(stop + margin, num_samples)
        held = _held_piece(out[:, first:last], music[:, first:last], model, limit_db)
        if held is not None:
            out[:, start:stop] = held[:, start - first : stop - first]
    return out


def _held_piece(noise: np.ndarray, music: np.ndarray, model: PsychoacousticModel, limit_db: float) -> np.ndarray | None:
    """A piece's noise (L, n) held to the check; None when no band of it reads over `limit_db`."""
    with torch.no_grad():
        threshold_db = model.masking_threshold_db(torch.from_numpy(np.ascontiguousarray(music, np.float32)))
    threshold_db = threshold_db.numpy().astype(np.float64)
    waveform = torch.from_numpy(np.array(noise, dtype=np.float32))
    held = False
    for _ in range(ROUNDS):
        coefficients = model.stft(waveform)  # (L, J, K) complex
        noise_db = PF.coefficients_db_spl(coefficients, model.n_fft, model.full_scale_db_spl, amplitude_floor=0.0)
        noise_db = noise_db.numpy().astype(np.float64)  # as `metrics.perceptual.masking_spectra_db` gives it
        band_nmr_db, band_of_bin = band_noise_to_mask_ratio_db(threshold_db, noise_db, model)  # (L, J, Z), (K,)
        over = band_nmr_db > limit_db
        if not over.any():
            break
        cut_db = np.where(over, band_nmr_db - (limit_db - AIM_BELOW_LIMIT_DB), 0.0)  # (L, J, Z)
        cut_db = np.concatenate([cut_db, np.zeros((*cut_db.shape[:-1], 1))], axis=-1)  # band −1: no cut
        gain = torch.from_numpy(np.power(10.0, -cut_db[..., band_of_bin] / 20.0).astype(np.float32))  # (L, J, K)
        waveform = model.istft(coefficients * gain, waveform.shape[-1])
        held = True
    return waveform.numpy() if held else None

