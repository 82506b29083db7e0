"""What one seed of the unlearnability benchmark produced: typed, shared by the audio experiment,
the MIDI part and the report, and written to results.json as plain JSON.

    SeedResult        one seed (and one tag: "main", an ablation "window=20ms", the style run)
      .runs           every attacker trained: one `TrainingResult` per family and condition
      .methods        per protection method: audibility, cost and optimiser summary, per family
                      (or "any" when the method does not depend on the attacker)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class TrainingResult:
    """One attacker trained on one version of the data (a condition: "clean", "unseen", a method)."""

    family: str
    condition: str
    seed: int
    final_loss: dict[str, float]  # probe → loss after the last step
    curves: dict[str, list[float]]  # probe → loss at each evaluation
    curve_steps: list[int]  # the step of each evaluation
    elapsed_s: float
    measures: dict = field(default_factory=dict)  # what the trained model generates, judged (measures.py)


@dataclass
class MethodRecord:
    """What releasing the protected songs under one method cost and changed, per family (or "any")."""

    audibility: dict[str, dict] = field(default_factory=dict)  # key → SNR, NMR, loudness, ViSQOL
    cost_s_per_song: dict[str, float] = field(default_factory=dict)  # key → seconds of protection per song
    summary: dict[str, dict] = field(default_factory=dict)  # key → what the optimiser reported


@dataclass
class SeedResult:
    seed: int
    tag: str  # "main", "window=20ms", "fraction=0.5", "style=bach"
    kind: str  # "audio" or "midi"
    fraction: float  # share of the songs protected
    window_ms: float  # the cloak's window
    protected_songs: list[str]  # names of the protected songs
    methods: dict[str, MethodRecord] = field(default_factory=dict)
    runs: list[TrainingResult] = field(default_factory=list)
    reference_measures: dict | None = None  # audio: the measures of the protected songs themselves
    reference_measures_by_family: dict[str, dict] = field(default_factory=dict)  # MIDI: as each family reads them

    def method(self, name: str) -> MethodRecord:
        """The record of a method, made empty on first use."""
        return self.methods.setdefault(name, MethodRecord())

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, values: dict) -> "SeedResult":
        """Read back what `to_json` wrote (results.json)."""
        values = dict(values)
        values["methods"] = {name: MethodRecord(**record) for name, record in values.get("methods", {}).items()}
        values["runs"] = [TrainingResult(**run) for run in values.get("runs", [])]
        values.setdefault("kind", "audio")
        return cls(**values)
