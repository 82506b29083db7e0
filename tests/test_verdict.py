"""The plain verdict: yes/no on audibility from the masking model and the loudness change, and the
measured-protection sentences, which must say what README's measurements say."""

import math
import re
from pathlib import Path

import pytest

from harmonycloak.flows.verdict import (
    BAND_NMR_P95_LIMIT_DB,
    LOUDNESS_CHANGE_LIMIT_LU,
    MEASURED_PROTECTION,
    audio_verdict,
)
from harmonycloak.settings import CLOAKS

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.parametrize("band_p95_db, change_lu, inaudible", [
    (-20.0, 0.0, True),
    (BAND_NMR_P95_LIMIT_DB, LOUDNESS_CHANGE_LIMIT_LU, True),  # the limits themselves pass
    (-math.inf, -0.1, True),  # no noise at all in 95 % of the bands
    (BAND_NMR_P95_LIMIT_DB + 0.1, 0.0, False),
    (-20.0, LOUDNESS_CHANGE_LIMIT_LU + 0.01, False),
    (-20.0, -(LOUDNESS_CHANGE_LIMIT_LU + 0.01), False),
    (-20.0, math.nan, True),  # too short for loudness: judged on the masking model alone
    (math.nan, math.nan, None),  # nothing measured: not judged
])
def test_audible_when_the_noise_stands_above_the_mask_or_the_level_moves(band_p95_db, change_lu, inaudible):
    verdict = audio_verdict({"band_p95_db": band_p95_db}, change_lu, "dominant")
    assert verdict.inaudible is inaudible
    answer = {True: "yes", False: "no", None: "not judged"}[inaudible]
    assert verdict.text().startswith(f"inaudible by our checks: {answer}")
    assert verdict.text().endswith(f"protection measured on the benchmark: {MEASURED_PROTECTION['dominant']}")


def test_every_figure_of_the_measured_protection_is_one_the_readme_reports():
    readme = README.read_text()
    measured = readme[readme.index("## Measured here"):readme.index("## Development")]
    for cloak, sentence in MEASURED_PROTECTION.items():
        for figure in re.findall(r"−?\d+\.\d+", sentence):  # with its sign: −0.27 is not 0.27
            assert figure in measured, f"{cloak}: {figure} is not in README's Measured here or Limitations"


def test_every_cloak_and_midi_has_its_sentence():
    assert set(MEASURED_PROTECTION) == {*CLOAKS, "midi"}


def test_verifys_further_checks_visqol_new_clipping_and_the_codecs_own_noise():
    from harmonycloak.flows.verdict import CODEC_MARGIN_DB, VISQOL_MIN_MOS

    quiet = {"band_p95_db": -10.0}
    assert audio_verdict(quiet, 0.0, "dominant", visqol_mos=VISQOL_MIN_MOS).inaudible is True
    assert audio_verdict(quiet, 0.0, "dominant", visqol_mos=VISQOL_MIN_MOS - 0.01).inaudible is False
    assert audio_verdict(quiet, 0.0, "dominant", clipped_samples={"original": 3, "protected": 3}).inaudible is True
    assert audio_verdict(quiet, 0.0, "dominant", clipped_samples={"original": 3, "protected": 4}).inaudible is False
    above = {"band_p95_db": 4.0}  # above the mask, but a lossy file's codec alone reads 3.5 dB
    assert audio_verdict(above, 0.0, "dominant").inaudible is False
    assert audio_verdict(above, 0.0, "dominant", codec_band_p95_db=4.0 - CODEC_MARGIN_DB).inaudible is True
    assert audio_verdict(above, 0.0, "dominant", codec_band_p95_db=2.9 - CODEC_MARGIN_DB).inaudible is False
    assert audio_verdict(quiet, 0.0, "dominant", kind="midi").protection == MEASURED_PROTECTION["midi"]
