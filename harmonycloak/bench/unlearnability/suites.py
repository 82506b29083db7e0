"""The three suites of `harmonycloak bench unlearnability`: presets, not code.

  smoke     CI, < 10 minutes on a 2-core CPU: tiny models, few songs, one seed, every
            method and family once (checks the plumbing, not the method)
  standard  ≤ 90 minutes on a 2-core CPU: three seeds, more songs and steps, the ablations
  full      sized for a GPU (uses it when present): default-size models, more songs, five
            seeds, paper-scale optimisation (20 PGD steps, bag of 6–7 per target)
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from harmonycloak.bench.unlearnability.baselines import CloakSpec, check_method
from harmonycloak.bench.unlearnability.data import DataSpec
from harmonycloak.bench.unlearnability.measures import MeasureSpec
from harmonycloak.bench.unlearnability.midi import MidiSpec
from harmonycloak.bench.unlearnability.runs import TrainingSpec
from harmonycloak.errors import SettingsError

AUDIO_FAMILIES = ("ar-transformer", "ar-gru", "ar-tcn")
BASE_METHODS = ("none", "gaussian-0.1", "gaussian-0.2", "gaussian-0.3", "em-l2", "em-linf", "random-dominant",
                "cloak-whitebox", "cloak-blackbox", "random-masked", "masked-whitebox", "masked-blackbox")
ALL_METHODS = tuple(m for base in BASE_METHODS for m in (base, base + "+mp3"))
# The standard suite round-trips one Gaussian budget through MP3, not three (time on 2 cores).
STANDARD_METHODS = tuple(m for m in ALL_METHODS if m not in ("gaussian-0.2+mp3", "gaussian-0.3+mp3"))
HEADLINE_METHODS = ("cloak-whitebox", "cloak-blackbox")  # the paper's white-box and black-box cloaks


@dataclass(frozen=True)
class Suite:
    name: str
    data: DataSpec
    training: TrainingSpec
    cloak: CloakSpec
    seeds: tuple[int, ...]
    families: tuple[str, ...] = AUDIO_FAMILIES
    methods: tuple[str, ...] = ALL_METHODS
    protected_fraction: float = 0.15  # share of the training songs protected (paper default)
    window_ablation_ms: tuple[float, ...] = ()  # Table 6
    fraction_ablation: tuple[float, ...] = ()  # Table 7
    ablation_family: str = "ar-transformer"  # MusicLM-like target of the ablations
    ablation_method: str = "cloak-blackbox"
    visqol: bool = False  # ViSQOL of the first protected song per method (slow on CPU)
    torch_threads: int | None = 1  # None: PyTorch's default (all cores)
    midi: MidiSpec | None = None  # the MIDI families (MuseGAN, SymphonyNet); None: audio only
    parts: tuple[str, ...] = ("audio", "style", "midi")  # which parts run: audio main runs + ablations, style, MIDI
    measures: MeasureSpec | None = None  # generated-music measures and the style experiment; None: skipped
    notes: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        for method in self.methods + (self.ablation_method,):
            check_method(method)
        if not 0 < self.protected_fraction <= 1:
            raise SettingsError("the protected fraction must be in (0, 1]")
        if not set(self.parts) <= {"audio", "style", "midi"}:
            raise SettingsError("the parts of a suite are 'audio', 'style' and 'midi'")

    @property
    def all_families(self) -> tuple[str, ...]:
        """Audio then MIDI target families of the parts that run."""
        audio = self.families if "audio" in self.parts else (
            self.measures.style_families if "style" in self.parts and self.measures is not None else ())
        midi = self.midi.families if self.midi is not None and "midi" in self.parts else ()
        return audio + midi


def _suites() -> dict[str, Suite]:
    smoke = Suite(
        name="smoke",
        data=DataSpec(pieces_per_composer=(("bach", 4), ("palestrina", 2), ("monteverdi", 2), ("essen", 2)),
                      recordings=3),
        training=TrainingSpec(preset="tiny", steps=60, batch_segments=8, evaluate_every=20),
        cloak=CloakSpec(model_preset="tiny", pgd_steps=4, max_rounds=1, bag_size=4, models_per_round=3),
        seeds=(0,),
        midi=MidiSpec(pieces_per_composer=(("bach", 6),), steps=20, evaluate_every=10, max_bars=8,
                      generated_phrases=4),
        measures=MeasureSpec(conditions=("clean", "cloak-blackbox", "unseen"), clips=2, generated_s=1.5,
                             griffin_lim_iterations=16, classifier_files_per_style=4),
        notes=("smoke: checks the plumbing on tiny models; its numbers say nothing about the method",),
    )
    standard = Suite(
        name="standard",
        data=DataSpec(pieces_per_composer=(("bach", 8), ("palestrina", 4), ("monteverdi", 4), ("essen", 4)),
                      recordings=6),
        training=TrainingSpec(preset="tiny", steps=300, batch_segments=8, learning_rate=3e-3, evaluate_every=50),
        # The product's optimisation effort (20 PGD steps, up to 3 rounds); a smaller bag.
        cloak=CloakSpec(model_preset="tiny", pgd_steps=20, max_rounds=3, bag_size=6, models_per_round=4),
        seeds=(0, 1, 2),
        methods=STANDARD_METHODS,
        measures=MeasureSpec(clips=4, generated_s=4.0),
        midi=MidiSpec(pieces_per_composer=(("bach", 14),), steps=300, evaluate_every=50, max_bars=8, pgd_steps=20,
                      max_rounds=3, bag_size=6, models_per_round=4, generated_phrases=32),
        window_ablation_ms=(5.0, 10.0, 20.0, 50.0, 100.0),
        fraction_ablation=(0.05, 0.10, 0.15, 0.50, 1.00),
        ablation_family="ar-tcn",  # the fastest family on a CPU; full uses ar-transformer
        notes=("standard: tiny models (1–4k parameters) on 2 CPU cores; gaussian-0.2/0.3 are not MP3-round-tripped",),
    )
    full = Suite(
        name="full",
        data=DataSpec(pieces_per_composer=(("bach", 40), ("palestrina", 20), ("monteverdi", 20), ("essen", 20)),
                      recordings=41),
        training=TrainingSpec(preset="default", steps=3000, batch_segments=16, learning_rate=1e-3, evaluate_every=100),
        cloak=CloakSpec(model_preset="default", pgd_steps=20, max_rounds=5, bag_size=6, models_per_round=5),
        seeds=(0, 1, 2, 3, 4),
        window_ablation_ms=(5.0, 10.0, 20.0, 50.0, 100.0),
        fraction_ablation=(0.05, 0.10, 0.15, 0.50, 1.00),
        measures=MeasureSpec(clips=64, generated_s=8.0, griffin_lim_iterations=64, style_families=AUDIO_FAMILIES,
                             classifier_files_per_style=200),
        midi=MidiSpec(pieces_per_composer=(("bach", 100),), preset="default", steps=3000, evaluate_every=100,
                      max_bars=16, pgd_steps=20, max_rounds=5, bag_size=9, models_per_round=7,
                      musegan_learning_rate=1e-4, symphonynet_learning_rate=3e-4,
                      generated_phrases=1250),  # 5,000 bars of 4-bar phrases, as the paper's Table 3
        ablation_family="ar-transformer",
        visqol=True,
        torch_threads=None,
    )
    return {suite.name: suite for suite in (smoke, standard, full)}


def get_suite(name: str, seeds: tuple[int, ...] | None = None, parts: tuple[str, ...] | None = None) -> Suite:
    """The named suite, with its seeds (and the parts that run) replaced when given."""
    suites = _suites()
    if name not in suites:
        raise SettingsError(f"unknown suite '{name}' (suites: {', '.join(suites)})")
    suite = suites[name]
    if seeds:
        suite = replace(suite, seeds=tuple(seeds))
    if parts:
        suite = replace(suite, parts=tuple(parts))
    return suite
