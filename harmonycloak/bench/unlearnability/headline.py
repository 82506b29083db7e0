"""headline.json: the benchmark's result in the one shape other tools read.

    {"suite": str, "commit": str,
     "threat_models": {"scratch" | "mimicry": {FAMILY: {METHOD: ENTRY}}}}

    ENTRY = {"ps": x, "ci": [lo, hi], "n_seeds": n, "gap": g, "visqol": v, "snr_db": s,
             "nmr_p95_db": m, "beats_random_control": true | false}

  ps                    the protection score (`score.bootstrap_interval`: a ratio of mean losses)
  ci                    its 95 % bootstrap interval; [null, null] when not defined
  n_seeds               paired seeds that entered it
  gap                   the relative gap the score divides by: (L_unseen − L_clean) / L_clean from
                        scratch, (L_base − L_ft_clean) / L_ft_clean for mimicry
  visqol, snr_db        audibility of the released songs against the originals (ViSQOL MOS,
                        waveform SNR in dB)
  nmr_p95_db            95th percentile of the noise-to-mask ratio (dB)
  beats_random_control  the method's interval lies above its random control's (`score.beats`);
                        false for the controls themselves

METHOD is "none", "positive-white-10db", "random-<cloak>", a cloak's name, or
"<method>+<attack>" with <attack> a name in `harmonycloak.purification.ATTACKS`. A number that
is not finite (NaN, ±inf) is written as null: the file is strict JSON (json.dumps never writes
NaN here), and `validate_headline` refuses a NaN in memory so that one never slips through.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

from harmonycloak.bench.unlearnability.score import ScoreInterval
from harmonycloak.errors import HarmonyCloakError
from harmonycloak.io.atomic import atomic_output
from harmonycloak.purification import ATTACKS

THREAT_MODELS = ("scratch", "mimicry")
TOP_KEYS = ("suite", "commit", "threat_models")
ENTRY_KEYS = ("ps", "ci", "n_seeds", "gap", "visqol", "snr_db", "nmr_p95_db", "beats_random_control")
NO_PROTECTION = "none"
POSITIVE_CONTROL = "positive-white-10db"
RANDOM_CONTROL_PREFIX = "random-"
ATTACK_SEPARATOR = "+"
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]*")  # a method's name before any "+<attack>"
_OPTIONAL_NUMBERS = ("ps", "gap", "visqol", "snr_db", "nmr_p95_db")


class HeadlineError(HarmonyCloakError):
    """A headline is not of the agreed shape, or its file cannot be written or read."""


def attacked_method(method: str, attack: str) -> str:
    """The name of ``method`` released and then purified by ``attack``: "<method>+<attack>"."""
    return f"{method}{ATTACK_SEPARATOR}{attack}"


def headline_entry(interval: ScoreInterval, *, gap: float | None, visqol: float | None, snr_db: float | None,
                   nmr_p95_db: float | None, beats_random_control: bool) -> dict:
    """One METHOD's entry from its score interval and measures; non-finite numbers become None."""
    return {
        "ps": json_number(interval.ps),
        "ci": [json_number(interval.low), json_number(interval.high)] if interval.defined else [None, None],
        "n_seeds": int(interval.n_seeds),
        "gap": json_number(gap),
        "visqol": json_number(visqol),
        "snr_db": json_number(snr_db),
        "nmr_p95_db": json_number(nmr_p95_db),
        "beats_random_control": bool(beats_random_control),
    }


def json_number(value: float | None) -> float | None:
    """``value`` as a float, or None when it is None, NaN or infinite (JSON has no NaN)."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def build_headline(suite: str, commit: str, threat_models: dict) -> dict:
    """The headline dict, checked (`validate_headline`).

    Args:
        threat_models: {"scratch" | "mimicry": {family: {method: entry}}}, entries as
            `headline_entry` makes them.
    Raises:
        HeadlineError: anything is not of the agreed shape.
    """
    headline = {"suite": suite, "commit": commit, "threat_models": threat_models}
    validate_headline(headline)
    return headline


def validate_headline(headline: dict) -> None:
    """Check that ``headline`` has exactly the agreed shape (the module docstring).

    Raises:
        HeadlineError: naming the first deviation found and where it is
            ("threat_models.scratch.gru.none.ps: ...").
    """
    _check_keys(headline, TOP_KEYS, "the headline")
    for key in ("suite", "commit"):
        if not isinstance(headline[key], str) or not headline[key]:
            raise HeadlineError(f"{key}: must be a non-empty string, not {headline[key]!r}")
    threat_models = headline["threat_models"]
    _check_mapping(threat_models, "threat_models")
    for threat_model, families in threat_models.items():
        where = f"threat_models.{threat_model}"
        if threat_model not in THREAT_MODELS:
            raise HeadlineError(f"{where}: unknown threat model; known: {', '.join(THREAT_MODELS)}")
        _check_mapping(families, where)
        for family, methods in families.items():
            if not isinstance(family, str) or not family:
                raise HeadlineError(f"{where}: a family must be named by a non-empty string, not {family!r}")
            _check_mapping(methods, f"{where}.{family}")
            for method, entry in methods.items():
                _check_method_name(method, f"{where}.{family}")
                _check_entry(entry, f"{where}.{family}.{method}")


def _check_mapping(value, where: str) -> None:
    if not isinstance(value, dict) or not value:
        raise HeadlineError(f"{where}: must be a non-empty object, not {value!r}")


def _check_keys(value, keys: tuple[str, ...], where: str) -> None:
    if not isinstance(value, dict):
        raise HeadlineError(f"{where}: must be an object, not {type(value).__name__}")
    missing = [k for k in keys if k not in value]
    extra = [k for k in value if k not in keys]
    if missing or extra:
        raise HeadlineError(f"{where}: " + "; ".join(
            part for part in (f"missing {', '.join(map(repr, missing))}" if missing else "",
                              f"unexpected {', '.join(map(repr, extra))}" if extra else "") if part))


def _check_method_name(method, where: str) -> None:
    """'none', 'random-masked', 'masked-blackbox', 'masked-blackbox+mp3-128k': a name, then at
    most one known attack."""
    if not isinstance(method, str):
        raise HeadlineError(f"{where}: a method must be named by a string, not {method!r}")
    base, separator, attack = method.partition(ATTACK_SEPARATOR)
    if not _NAME.fullmatch(base):
        raise HeadlineError(f"{where}.{method}: not a method name (lower case letters, digits, '.', '_', '-')")
    if separator and attack not in ATTACKS:
        raise HeadlineError(f"{where}.{method}: unknown attack '{attack}'; known: {', '.join(ATTACKS)}")


def _check_entry(entry, where: str) -> None:
    _check_keys(entry, ENTRY_KEYS, where)
    for key in _OPTIONAL_NUMBERS:
        _check_number_or_null(entry[key], f"{where}.{key}")
    ci = entry["ci"]
    if not isinstance(ci, list) or len(ci) != 2:
        raise HeadlineError(f"{where}.ci: must be a list [low, high], not {ci!r}")
    for end in ci:
        _check_number_or_null(end, f"{where}.ci")
    if (ci[0] is None) != (ci[1] is None):
        raise HeadlineError(f"{where}.ci: both ends are numbers or both are null, not {ci!r}")
    if ci[0] is not None and ci[0] > ci[1]:
        raise HeadlineError(f"{where}.ci: the low end {ci[0]} lies above the high end {ci[1]}")
    if entry["ps"] is None and ci[0] is not None:
        raise HeadlineError(f"{where}.ci: an interval without a score (ps is null)")
    n_seeds = entry["n_seeds"]
    if not isinstance(n_seeds, int) or isinstance(n_seeds, bool) or n_seeds < 0:
        raise HeadlineError(f"{where}.n_seeds: must be a whole number ≥ 0, not {n_seeds!r}")
    beats = entry["beats_random_control"]
    if not isinstance(beats, bool):
        raise HeadlineError(f"{where}.beats_random_control: must be true or false, not {beats!r}")
    if beats and ci[0] is None:
        raise HeadlineError(f"{where}.beats_random_control: true without an interval")


def _check_number_or_null(value, where: str) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise HeadlineError(f"{where}: must be a number or null, not {value!r}")
    if not math.isfinite(value):
        raise HeadlineError(f"{where}: {value} is not a JSON number; write null for a value that is not finite")


def headline_json(headline: dict) -> str:
    """The checked headline as strict JSON text (2-space indent, newline at the end)."""
    validate_headline(headline)
    return json.dumps(headline, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def write_headline(headline: dict, path: str | Path) -> Path:
    """Check ``headline`` and write it to ``path`` atomically (whole or not at all); the path.

    Raises:
        HeadlineError: the headline is not of the agreed shape (nothing is written), or the
            folder does not exist or cannot be written to.
    """
    text = headline_json(headline)
    path = Path(path)
    try:
        with atomic_output(path, error_class=HeadlineError) as temp:
            temp.write_text(text, encoding="utf-8")
    except OSError as error:
        raise HeadlineError(f"writing the headline failed ({error.strerror or error})", path) from error
    return path


def read_headline(path: str | Path) -> dict:
    """Read and check a headline.json written by `write_headline`.

    Raises:
        HeadlineError: the file is missing, not strict JSON (NaN included), or not of the shape.
    """
    path = Path(path)

    def refuse_constant(name: str):
        raise HeadlineError(f"the file holds {name}, which is not JSON; a missing number is null", path)

    try:
        headline = json.loads(path.read_text(encoding="utf-8"), parse_constant=refuse_constant)
    except OSError as error:
        raise HeadlineError(f"cannot read the headline ({error.strerror or error})", path) from error
    except json.JSONDecodeError as error:
        raise HeadlineError(f"the headline is not valid JSON ({error})", path) from error
    try:
        validate_headline(headline)
    except HeadlineError as error:
        raise HeadlineError(error.message, path) from None
    return headline
