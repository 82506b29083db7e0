"""The three suites of `harmonycloak bench unlearnability`: presets, not code.

  smoke     CI, < 10 minutes on a 2-core CPU: tiny models, few songs, one seed, every
            part, method and family once (checks the plumbing, not the method)
  standard  the reference machine's report: the threat models (T1 from scratch, T2 style
            mimicry) for the zoo's four audio families (and T2 for its two MIDI ones), three
            seeds at once, MP3 as the attack; 109.9 min as one command on a 2-core CPU (ViSQOL included)
  full      sized for a GPU (uses it when present): zoo-size attackers trained long, every
            attack, the product's optimisation effort, five seeds, and the paper's setting
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from harmonycloak.bench.generated import GeneratedSpec
from harmonycloak.bench.unlearnability.baselines import CloakSpec
from harmonycloak.bench.unlearnability.baselines import check_method as check_paper_method
from harmonycloak.bench.unlearnability.data import AlbumSpec, DataSpec
from harmonycloak.bench.unlearnability.measures import MeasureSpec
from harmonycloak.bench.unlearnability.midi import MidiSpec
from harmonycloak.bench.unlearnability.midi_mimicry import MIDI_MIMICRY_FAMILIES, MidiMimicrySpec
from harmonycloak.bench.unlearnability.releases import (OTHER_MUSIC, PAPER_METHODS, PRODUCT_DEFAULT, RANDOM_CONTROL,
                                                        ReleaseSpec, check_method)
from harmonycloak.bench.unlearnability.threats import FAMILY_GROUP, ScratchSize, ThreatSpec
from harmonycloak.optim.finetune import FinetuneRecipe
from harmonycloak.bench.unlearnability.runs import TrainingSpec
from harmonycloak.errors import SettingsError

AUDIO_FAMILIES = ("ar-transformer", "ar-gru", "ar-tcn")
BASE_METHODS = ("none", "gaussian-0.1", "gaussian-0.2", "gaussian-0.3", "em-l2", "em-linf", "random-dominant",
                "cloak-whitebox", "cloak-blackbox", "random-masked", "masked-whitebox", "masked-blackbox")
ALL_METHODS = tuple(m for base in BASE_METHODS for m in (base, base + "+mp3"))
# The standard suite round-trips one Gaussian budget through MP3, not three (time on 2 cores).
STANDARD_METHODS = tuple(m for m in ALL_METHODS if m not in ("gaussian-0.2+mp3", "gaussian-0.3+mp3"))
HEADLINE_METHODS = ("cloak-whitebox", "cloak-blackbox")  # the paper's white-box and black-box cloaks
PARTS = ("scratch", "mimicry", "audio", "style", "midi")  # threat models T1 and T2; the paper's tiny setting; MIDI
# Every suite's threat models measure the paper's methods and what `protect` does to audio when asked
# nothing (`default`, after its random control): one command measures the protection that ships.
_DEFAULT_AND_CONTROL = (RANDOM_CONTROL[PRODUCT_DEFAULT], PRODUCT_DEFAULT)
THREAT_METHODS = PAPER_METHODS + _DEFAULT_AND_CONTROL
ATTACKED_METHODS = ("none", "random-dominant", "dominant-blackbox") + _DEFAULT_AND_CONTROL
THREAT_FAMILIES = ("ar-transformer", "codec-lm", "mel-diffusion", "contrastive")  # one of each zoo group
# T2 for MIDI too: the zoo's symbolic models fine-tuned on one composer (T1 for MIDI is the part "midi")
THREAT_FAMILIES_WITH_MIDI = THREAT_FAMILIES + MIDI_MIMICRY_FAMILIES


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
    # The threat models (parts "scratch" and "mimicry"): the zoo's families attack one artist's album.
    album: AlbumSpec = field(default_factory=AlbumSpec)
    # T1's other songs (enough of them; a fixed draw makes the album `protected_fraction` of the corpus)
    threat_corpus: DataSpec = field(default_factory=lambda: DataSpec(
        pieces_per_composer=(("palestrina", 24), ("monteverdi", 16), ("essen", 16), ("bach", 16)), recordings=24))
    threats: ThreatSpec = field(default_factory=ThreatSpec)
    threat_cloak: ReleaseSpec = field(default_factory=ReleaseSpec)
    families_for_threats: tuple[str, ...] = THREAT_FAMILIES
    threat_methods: tuple[str, ...] = THREAT_METHODS
    # T2 alone runs these too: the style measures' control, other music released in place of the album, judges
    # what a fine-tuned model generates, which T1 does not measure (there it repeats what `unseen` says)
    mimicry_methods: tuple[str, ...] = ()
    attacks: tuple[str, ...] = ()  # purifications applied, each to `attacked_methods`, in T2 ...
    scratch_attacks: tuple[str, ...] = ()  # ... and these in T1 (each also retrains the unseen reference)
    attacked_methods: tuple[str, ...] = ATTACKED_METHODS
    # T2: the FD of what each fine-tuned model generates to the artist's unreleased songs; None: not measured
    threat_generated: GeneratedSpec | None = None
    midi_mimicry: MidiMimicrySpec = field(default_factory=MidiMimicrySpec)  # T2 of the MIDI families
    jobs: int = 1  # seeds of the threat models run this many at a time, each in a process of its own

    def __post_init__(self) -> None:
        for method in self.methods + (self.ablation_method,):
            check_paper_method(method)
        for threat in ("scratch", "mimicry"):
            for method in self.methods_for(threat):
                check_method(method)
        known = tuple(FAMILY_GROUP) + MIDI_MIMICRY_FAMILIES
        unknown = [family for family in self.families_for_threats if family not in known]
        if unknown:
            raise SettingsError(f"unknown attacker family '{unknown[0]}' (known: {', '.join(known)})")
        if not 0 < self.protected_fraction <= 1:
            raise SettingsError("the protected fraction must be in (0, 1]")
        if not set(self.parts) <= set(PARTS):
            raise SettingsError(f"the parts of a suite are {', '.join(PARTS)}")

    @property
    def threat_models(self) -> tuple[str, ...]:
        """The threat-model parts that run, in order."""
        return tuple(part for part in ("scratch", "mimicry") if part in self.parts)

    def methods_for(self, threat: str) -> tuple[str, ...]:
        """The methods of a threat: every release method, then the attacked ones (audio)."""
        attacks = self.scratch_attacks if threat == "scratch" else self.attacks
        own = self.mimicry_methods if threat == "mimicry" else ()
        return self.threat_methods + own + tuple(f"{m}+{a}" for a in attacks for m in self.attacked_methods)

    def methods_of(self, threat: str, family: str) -> tuple[str, ...]:
        """The methods a family runs in a threat: MIDI families run T2 with the MIDI methods alone."""
        if family in MIDI_MIMICRY_FAMILIES:
            return self.midi_mimicry.methods if threat == "mimicry" else ()
        return self.methods_for(threat)

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
        parts=("scratch", "mimicry", "audio", "style", "midi"),
        album=AlbumSpec(released_tracks=2, unreleased_tracks=1, clips_per_track=1),
        threat_corpus=DataSpec(pieces_per_composer=(("palestrina", 8),), recordings=4),
        threats=ThreatSpec(scratch_preset="tiny", scratch_released=2,
                           scratch=FinetuneRecipe(kind="full", steps=4, learning_rate=1e-3, batch_segments=2,
                                                  segment_s=0.64, augment_gain=False, augment_speed=False),
                           mimicry=FinetuneRecipe(kind="full", steps=3, learning_rate=1e-4, batch_segments=2,
                                                  segment_s=0.64)),
        threat_cloak=ReleaseSpec(pgd_steps=2, max_rounds=1, bag_size=2, models_per_round=2, bag_preset="tiny"),
        attacks=("mp3-128k",), scratch_attacks=("mp3-128k",),
        threat_generated=GeneratedSpec(clips=2, generated_s=0.64, window_s=0.32, diffusion_steps=2),
        families_for_threats=THREAT_FAMILIES_WITH_MIDI,
        midi_mimicry=MidiMimicrySpec(released=2, unreleased=1, max_bars=4, steps=3, batch_segments=2, pgd_steps=1,
                                     bag_size=2, models_per_round=2),
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
        notes=("standard: the threat models on 2 CPU cores (three seeds at once); the paper's tiny setting is the "
               "optional part `audio` (tiny models of 1–4k parameters)",),
        parts=("scratch", "mimicry"),
        threats=ThreatSpec(scratch_preset="small", scratch_released=4,
                           scratch=FinetuneRecipe(kind="full", steps=400, learning_rate=1e-3, batch_segments=8,
                                                  segment_s=1.28, augment_gain=False, augment_speed=False),
                           mimicry=FinetuneRecipe(kind="full", steps=100, learning_rate=1e-4, batch_segments=8),
                           # the small next-frame transformer learns its corpus 12 % better than unseen music; at
                           # the zoo's size and 3·10⁻³ it learns it 61 % better in as many steps, for 3.4 times the
                           # time (16 against 4.7 minutes a seed in the suite). It and the diffusion model read 100 dB
                           # of level, as public generators' mels do: at the presets' 50 dB, white noise at 10 dB SNR
                           # hid under their floor in most bands and the positive control read 0.14 and 0.32. The
                           # diffusion model learns its corpus 9 % better than unseen music at the small size and 400
                           # steps over the whole schedule; at the zoo's size and 800 steps, measured from the middle
                           # of the schedule on (where the target is mostly the music), 44 % (31 / 34 / 68 by seed)
                           scratch_sizes=(ScratchSize("ar-transformer", "zoo", steps=400, learning_rate=3e-3,
                                                      log_floor_db=-100.0),
                                          ScratchSize("mel-diffusion", "zoo", steps=800, learning_rate=1e-3,
                                                      log_floor_db=-100.0, probe_timestep_from=0.5))),
        # A fifth of the product's optimisation effort (6 PGD steps, 1 round, a bag of 4, Q = 3): at the
        # product's effort the black-box releases alone take ~6 minutes each and the suite ~2.7 hours on 2 cores.
        threat_cloak=ReleaseSpec(pgd_steps=6, max_rounds=1, bag_size=4, models_per_round=3),
        # the style measures' positive control in T2. White noise as loud as the music is no longer run: since the
        # attackers read 100 dB of level, 10 dB is seen in every family whose losses can be read (docs/benchmark.md)
        mimicry_methods=(OTHER_MUSIC,),
        attacks=("mp3-128k",), scratch_attacks=("mp3-128k",),
        # after MP3: what `protect` ships and its random control (the paper's cloak, 0.00 before MP3 in every
        # family, and its random control are measured after every attack in the full suite): two hours on 2 cores
        attacked_methods=("none",) + _DEFAULT_AND_CONTROL,
        threat_generated=GeneratedSpec(clips=8),  # clips of one segment
        families_for_threats=THREAT_FAMILIES_WITH_MIDI,
        jobs=3,  # the three seeds at once: 3 processes on 2 cores take ~1.5 seeds of time, two at a time take 2
        # ViSQOL of each release's first clip (5.12 s): about 3 s of one core a release, 45 releases a seed
        visqol=True,
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
        parts=("scratch", "mimicry", "audio", "style", "midi"),
        threats=ThreatSpec(scratch_preset="zoo", scratch_released=12,
                           scratch=FinetuneRecipe(kind="full", steps=3000, learning_rate=1e-3, batch_segments=16,
                                                  augment_gain=False, augment_speed=False),
                           mimicry=FinetuneRecipe(kind="full", steps=500, learning_rate=1e-4, batch_segments=16),
                           # the next-frame and diffusion attackers read 100 dB of level and the diffusion model is
                           # measured from the middle of its schedule on, as in the standard suite
                           scratch_sizes=(ScratchSize("ar-transformer", "zoo", steps=3000, learning_rate=1e-3,
                                                      log_floor_db=-100.0),
                                          ScratchSize("mel-diffusion", "zoo", steps=3000, learning_rate=1e-3,
                                                      log_floor_db=-100.0, probe_timestep_from=0.5),
                                          # the contrastive encoder's training is chaotic at 10⁻³ and 2·10⁻⁴ (a
                                          # gain of 1 + 10⁻⁶ on the released clips moves PS by up to 1.2 and
                                          # 0.24); at 5·10⁻⁵ it is stable and in 3000 steps learns the clips
                                          ScratchSize("contrastive", "zoo", steps=3000, learning_rate=5e-5)),
                           device="auto"),
        threat_cloak=ReleaseSpec(pgd_steps=20, max_rounds=3, bag_size=10, models_per_round=7),
        # the louder positive control too: T1's zoo-size attackers learn the songs through 10 dB noise
        threat_methods=THREAT_METHODS + ("positive-white-0db", OTHER_MUSIC),
        attacks=("mp3-128k", "aac-128k", "opus-96k", "resample-22k", "denoise-spectral", "purify-noise-lowpass"),
        scratch_attacks=("mp3-128k", "aac-128k", "opus-96k", "resample-22k", "denoise-spectral",
                         "purify-noise-lowpass"),
        attacked_methods=ATTACKED_METHODS + ("positive-white-10db", "dominant-whitebox", "random-masked",
                                             "masked-whitebox", "masked-blackbox"),
        threat_generated=GeneratedSpec(clips=32, generated_s=5.12),
        families_for_threats=THREAT_FAMILIES_WITH_MIDI,
        midi_mimicry=MidiMimicrySpec(released=20, unreleased=20, max_bars=16, steps=500, batch_segments=16,
                                     pgd_steps=20, max_rounds=3, bag_size=9, models_per_round=7, bag_preset="default",
                                     style_judged=MIDI_MIMICRY_FAMILIES),
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
