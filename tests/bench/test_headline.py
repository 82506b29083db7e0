"""headline.json: the agreed shape, strict JSON (NaN as null), round trip, and refusals."""

import copy
import json
import math

import pytest

from harmonycloak.bench.unlearnability.headline import (
    HeadlineError,
    attacked_method,
    build_headline,
    headline_entry,
    headline_json,
    read_headline,
    validate_headline,
    write_headline,
)
from harmonycloak.bench.unlearnability.score import ScoreInterval
from harmonycloak.errors import HarmonyCloakError


def _entry(**changes):
    entry = {"ps": 0.42, "ci": [0.2, 0.6], "n_seeds": 3, "gap": 0.35, "visqol": 4.1, "snr_db": 31.5,
             "nmr_p95_db": -6.0, "beats_random_control": True}
    entry.update(changes)
    return entry


def _headline():
    methods = {
        "none": _entry(ps=0.0, ci=[0.0, 0.0], beats_random_control=False),
        "positive-white-10db": _entry(ps=0.8, ci=[0.6, 1.0], beats_random_control=False),
        "random-masked": _entry(ps=0.05, ci=[-0.05, 0.15], beats_random_control=False),
        "masked-blackbox": _entry(),
        attacked_method("masked-blackbox", "mp3-128k"): _entry(ps=0.1, ci=[-0.1, 0.3], beats_random_control=False),
    }
    return {"suite": "standard", "commit": "66bab21",
            "threat_models": {"scratch": {"gru": methods}, "mimicry": {"transformer": copy.deepcopy(methods)}}}


def test_round_trip_through_the_file(tmp_path):
    headline = _headline()
    path = write_headline(headline, tmp_path / "headline.json")
    assert read_headline(path) == headline
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_entry_from_an_interval_writes_nan_and_infinity_as_null(tmp_path):
    undefined = headline_entry(ScoreInterval(math.nan, math.nan, math.nan, 3, 10), gap=math.inf, visqol=None,
                               snr_db=math.nan, nmr_p95_db=-4.0, beats_random_control=False)
    assert undefined == {"ps": None, "ci": [None, None], "n_seeds": 3, "gap": None, "visqol": None,
                         "snr_db": None, "nmr_p95_db": -4.0, "beats_random_control": False}
    point_only = headline_entry(ScoreInterval(0.5, math.nan, math.nan, 3, 10), gap=0.3, visqol=4.0, snr_db=30.0,
                                nmr_p95_db=-4.0, beats_random_control=False)
    assert point_only["ps"] == 0.5 and point_only["ci"] == [None, None]
    headline = build_headline("smoke", "abc", {"scratch": {"gru": {"none": undefined, "em-linf": point_only}}})
    text = headline_json(headline)
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text)["threat_models"]["scratch"]["gru"]["none"]["ps"] is None
    write_headline(headline, tmp_path / "h.json")
    assert read_headline(tmp_path / "h.json") == headline


def test_a_nan_in_memory_is_refused_not_written(tmp_path):
    headline = _headline()
    headline["threat_models"]["scratch"]["gru"]["none"]["gap"] = math.nan
    with pytest.raises(HeadlineError, match=r"threat_models\.scratch\.gru\.none\.gap: .*null"):
        write_headline(headline, tmp_path / "headline.json")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("damage, message", [
    (lambda h: h.pop("commit"), "missing 'commit'"),
    (lambda h: h.update(extra=1), "unexpected 'extra'"),
    (lambda h: h.update(suite=""), "suite"),
    (lambda h: h["threat_models"].update(finetune=h["threat_models"]["scratch"]), "unknown threat model"),
    (lambda h: h["threat_models"].update(scratch={}), "non-empty object"),
    (lambda h: _gru(h)["none"].pop("visqol"), r"none: missing 'visqol'"),
    (lambda h: _gru(h)["none"].update(note="x"), "unexpected 'note'"),
    (lambda h: _gru(h)["none"].update(ps="0.0"), r"none\.ps: must be a number or null"),
    (lambda h: _gru(h)["none"].update(snr_db=True), r"snr_db: must be a number or null"),
    (lambda h: _gru(h)["none"].update(n_seeds=3.0), "n_seeds"),
    (lambda h: _gru(h)["none"].update(n_seeds=-1), "n_seeds"),
    (lambda h: _gru(h)["none"].update(beats_random_control=1), "beats_random_control"),
    (lambda h: _gru(h)["none"].update(ci=[0.0]), r"ci: must be a list"),
    (lambda h: _gru(h)["none"].update(ci=(0.0, 0.0)), r"ci: must be a list"),
    (lambda h: _gru(h)["none"].update(ci=[0.0, None]), "both ends"),
    (lambda h: _gru(h)["none"].update(ci=[0.5, 0.1]), "low end"),
    (lambda h: _gru(h)["none"].update(ps=None), "interval without a score"),
    (lambda h: _gru(h)["masked-blackbox"].update(ci=[None, None]), "true without an interval"),
    (lambda h: _gru(h).update({"masked-blackbox+jpeg": _entry()}), "unknown attack 'jpeg'"),
    (lambda h: _gru(h).update({"Masked Blackbox": _entry()}), "not a method name"),
    (lambda h: _gru(h).update({"none+mp3-128k+opus-96k": _entry()}), "unknown attack"),
])
def test_validation_names_the_deviation(damage, message):
    headline = _headline()
    validate_headline(headline)  # intact: accepted
    damage(headline)
    with pytest.raises(HeadlineError, match=message) as caught:
        validate_headline(headline)
    assert isinstance(caught.value, HarmonyCloakError)


def _gru(headline):
    return headline["threat_models"]["scratch"]["gru"]


def test_reading_refuses_nan_and_broken_files(tmp_path):
    path = tmp_path / "headline.json"
    path.write_text(json.dumps(_headline()).replace('"gap": 0.35', '"gap": NaN', 1))
    with pytest.raises(HeadlineError, match="NaN"):
        read_headline(path)
    path.write_text('{"suite": ')
    with pytest.raises(HeadlineError, match="not valid JSON"):
        read_headline(path)
    with pytest.raises(HeadlineError, match="cannot read"):
        read_headline(tmp_path / "absent.json")
    with pytest.raises(HeadlineError, match="does not exist"):
        write_headline(_headline(), tmp_path / "no-folder" / "headline.json")
