"""Psychoacoustic model: threshold in quiet, Bark scale, calibration in dB SPL, frequency and
temporal masking, and the DLS velocity curve. Pure functions in `functional`; a module holding
the settings in `masker`."""

from harmonycloak.psycho.masker import PsychoacousticModel

__all__ = ["PsychoacousticModel"]
