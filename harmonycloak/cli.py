"""The `harmonycloak` command: a thin shell over the public API.

    harmonycloak protect INPUT... [-o OUT] [--mode blackbox|whitebox] [--model CKPT] [--jobs N] [--json] ...
    harmonycloak verify ORIGINAL PROTECTED [--fail-if-audible]
    harmonycloak train AUDIO_OR_MIDI... -o MODEL.pt
    harmonycloak bench speed
    harmonycloak bench unlearnability --suite smoke|standard|full [--out DIR] [--seeds N...]
    harmonycloak bench unlearning --suite smoke|standard|full [--out DIR] [--seeds N...]
    harmonycloak zoo train NAME [--out DIR] | harmonycloak zoo list

Errors a user can cause are printed on one line (`error: FILE: problem`); with several
inputs, one bad file does not stop the others. Exit codes: 0 done, 1 a file failed (or
`verify --fail-if-audible` found the change audible), 2 a usage or settings error.
A folder (or several inputs) is a batch (`harmonycloak.batch`): resumable through its
manifest, in --jobs processes or on a Ray cluster, with one progress bar.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from harmonycloak import settings as defaults
from harmonycloak.errors import HarmonyCloakError, SettingsError
from harmonycloak.settings import ProtectionSettings

PARTS = ("scratch", "mimicry", "audio", "style", "midi")  # the parts of `bench unlearnability` (its suites check them)

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE = 0, 1, 2


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    arguments = parser.parse_args(argv)
    try:
        return arguments.run(arguments)
    except SettingsError as error:  # a setting the user gave: like a usage error
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except HarmonyCloakError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_SOME_FAILED
    except OSError as error:  # a file system failure that no step turned into a HarmonyCloakError
        print(f"error: {f'{error.filename}: ' if error.filename else ''}{error.strerror or error}", file=sys.stderr)
        return EXIT_SOME_FAILED
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _positive_int(text: str) -> int:
    """argparse type: an integer ≥ 1 (anything else is a usage error, exit 2)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _positive_float(text: str) -> float:
    """argparse type: a finite number > 0 (anything else is a usage error, exit 2)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number above 0, not {text}")
    return value


def _mimicry_recipe(arguments: argparse.Namespace) -> dict | None:
    """The fields of T2's fine-tuning recipe the command line replaces; None when it names none."""
    fields = {"kind": arguments.mimicry_recipe, "steps": arguments.mimicry_steps,
              "learning_rate": arguments.mimicry_learning_rate}
    return {name: value for name, value in fields.items() if value is not None} or None


def _epilog(*examples: str) -> str:
    return "examples:\n" + "\n".join(f"  {example}" for example in examples)


def _parser() -> argparse.ArgumentParser:
    from harmonycloak import __version__
    from harmonycloak.purification import ATTACKS

    parser = argparse.ArgumentParser(
        prog="harmonycloak", description="Make music unlearnable for generative AI.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=_epilog("harmonycloak protect song.flac", "harmonycloak protect album/ -o protected/ --jobs 2",
                       "harmonycloak verify song.flac song.protected.flac")
               + f"\n\nexit codes: {EXIT_OK} done, {EXIT_SOME_FAILED} a file failed, {EXIT_USAGE} a usage or settings error")
    parser.add_argument("--version", action="version", version=f"harmonycloak {__version__}",
                        help="print the version and exit")
    talk = argparse.ArgumentParser(add_help=False)  # -q / -v on every command
    loudness = talk.add_mutually_exclusive_group()
    loudness.add_argument("-q", "--quiet", action="store_true", help="print errors only (no progress, no per-file lines)")
    loudness.add_argument("-v", "--verbose", action="store_true",
                          help="also print what is skipped and why, and the reason each file is redone")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    def command(parent, name: str, help: str, *examples: str) -> argparse.ArgumentParser:
        return parent.add_parser(name, help=help, description=help[0].upper() + help[1:] + ".", parents=[talk],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=_epilog(*examples))

    protect = command(commands, "protect", "protect audio or MIDI files, or folders of them",
                      "harmonycloak protect song.flac                 # → song.protected.flac + report",
                      "harmonycloak protect album/ -o protected/ --jobs 2   # a catalogue: resumable, 2 processes",
                      "harmonycloak protect song.wav --preview 20 --report png",
                      "harmonycloak protect album/ -o protected/ --json > summary.json")
    protect.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="audio or MIDI files, or folders")
    protect.add_argument("-o", "--output", help="output file (one input) or folder (several inputs, or a name ending in /)")
    protect.add_argument("--mode", choices=defaults.MODES, default=ProtectionSettings.mode,
                         help="blackbox: a bag of surrogate models (default); whitebox: the model given with --model")
    protect.add_argument("--model", type=Path,
                         help="white-box: the model to protect against, a checkpoint of `harmonycloak train` or "
                              "zoo:NAME, a pretrained zoo model (`harmonycloak zoo list`)")
    protect.add_argument("--strength", choices=defaults.STRENGTHS, default=ProtectionSettings.strength,
                         help=f"how close the noise may come to what masks it (default {ProtectionSettings.strength})")
    protect.add_argument("--cloak", choices=defaults.CLOAKS, default=ProtectionSettings.cloak,
                         help="masked-gain: noise under the masking threshold and level-neutral gains of at most "
                              "±0.5/2/2 dB (low/medium/high) on the music, optimised together, the sum held to the "
                              "band check (audio's default); masked: the noise alone; gain: the gains alone, at most "
                              "±0.5/1/2 dB, no added noise; dominant: one tone per window at the dominant note (the "
                              "paper; MIDI's only cloak)")
    protect.add_argument("--bound-rule", choices=defaults.BOUND_RULES, default=ProtectionSettings.bound_rule,
                         help="masked cloak: band-pool (default), each Bark band's noise summed under the band's "
                              "lowest threshold (the rule of verify's per-band check), placed by the optimiser in any "
                              "of the band's bins; band, the same budget spread evenly over the band's bins; bin, "
                              "each STFT bin under its own masking threshold (louder: audible by the band check)")
    protect.add_argument("--objective", choices=defaults.OBJECTIVES, default=ProtectionSettings.objective,
                         help="what the noise is optimised for: minmin, the paper's error-minimising noise; "
                              "maxloss, error-maximising noise against models fine-tuned on the song; "
                              "future-cue, energy that announces the next frame (needs no model, fast); "
                              "embedding-shift, the zoo's encoder hears a decoy style; gradient-matching, a "
                              "training step on the song moves a model toward a decoy of it; reverse-gradient, a training "
                              "step on the song teaches a model nothing of the clean song, or unlearns it "
                              "(docs/objectives.md). Default: reverse-gradient for audio, minmin for MIDI, "
                              "which takes minmin or maxloss")
    protect.add_argument("--surrogates", choices=defaults.SURROGATE_KINDS, default=ProtectionSettings.surrogates,
                         help="black-box min-min: random, the paper's bag of randomly initialised models; zoo, the "
                              "pretrained models that ship with harmonycloak (the other objectives always use the zoo)")
    protect.add_argument("--zoo-models", nargs="+", metavar="NAME", default=None,
                         help="the pretrained zoo models the noise is optimised against (`harmonycloak zoo list`), "
                              "e.g. ar-transformer ar-gru ar-tcn to leave the codec LM out; default: the "
                              "objective's (the three next-frame models and the codec LM for reverse-gradient)")
    low_ms, high_ms = defaults.WINDOW_MS_RANGE
    protect.add_argument("--window-ms", type=float, default=ProtectionSettings.window_ms,
                         help=f"noise window, {low_ms:g} to {high_ms:g} ms (default {ProtectionSettings.window_ms:g})")
    protect.add_argument("--seed", type=int, default=ProtectionSettings.seed, help="same seed, same output (default 0)")
    protect.add_argument("--device", choices=defaults.DEVICES, default=ProtectionSettings.device,
                         help="where to compute: auto (a CUDA GPU when PyTorch sees one, default), cpu or cuda")
    protect.add_argument("--preview", type=float, metavar="SECONDS", help="protect only this many seconds from the middle")
    protect.add_argument("--stems", action="store_true",
                         help="the inputs are stems of one song (or one multichannel file of stems): noise per stem")
    protect.add_argument("--overwrite", action="store_true",
                         help="replace outputs that exist already (also the input itself, if the output names it) "
                              "and redo files a batch's manifest shows complete; without it an existing output "
                              "is skipped, unless the manifest shows this batch wrote it for an input or settings "
                              "that have changed since")
    protect.add_argument("--report", choices=defaults.REPORTS, default=None,
                         help="json: a JSON report beside each output; png: the JSON and a picture; none: "
                              "neither (default: png for single files, json for a folder or several inputs)")
    protect.add_argument("--no-report", dest="report", action="store_const", const="none",
                         help="the same as --report none")
    protect.add_argument("--jobs", type=_positive_int, default=1, metavar="N",
                         help="protect N files at a time in N processes, sharing this machine's threads "
                              "(default 1; the outputs are the same bytes whatever N)")
    protect.add_argument("--songs-per-batch", type=_positive_int, default=ProtectionSettings.songs_per_batch,
                         metavar="N",
                         help="optimise the audio files of a batch N at a time, their segments in one batch, for a "
                              "GPU that one song leaves idle (on a 2-core CPU 4 songs took a fifth less CPU time). "
                              "A song's noise then depends on the songs beside it (default 1: each song alone)")
    protect.add_argument("--eot", nargs="+", choices=tuple(ATTACKS), default=(), metavar="PURIFICATION",
                         help="optimise the noise for what survives these purifications too (audio; each batch "
                              f"goes through one of them or none): {', '.join(ATTACKS)}. Slower: every codec "
                              "draw encodes and decodes the batch")
    protect.add_argument("--backend", choices=defaults.BACKENDS, default="local",
                         help="local: this machine (default); ray: the Ray cluster at --address "
                              "(pip install 'harmonycloak[cluster]'; the files must be on a file system every "
                              "node sees, at the same paths)")
    protect.add_argument("--address", metavar="ADDR",
                         help="the Ray cluster's address, e.g. 10.0.0.5:6379 (default: RAY_ADDRESS, or a local Ray)")
    protect.add_argument("--json", action="store_true",
                         help="print one JSON summary object on stdout (counts, seconds, each file's outcome); "
                              "the per-file lines go to stderr")
    protect.add_argument("--preset", choices=defaults.MODEL_PRESETS, default=ProtectionSettings.model_preset,
                         help=argparse.SUPPRESS)
    protect.add_argument("--rounds", type=int, default=ProtectionSettings.max_rounds,
                         help="optimisation rounds at most (default: the objective's, 1 for reverse-gradient, "
                              "3 for the others)")
    protect.set_defaults(run=_run_protect)

    verify = command(commands, "verify", "measure how audible and how protected a protected file is",
                     "harmonycloak verify song.flac song.protected.flac",
                     "harmonycloak verify song.wav song.protected.wav --no-protection-check --fail-if-audible")
    verify.add_argument("original", type=Path, help="the original file")
    verify.add_argument("protected", type=Path, help="its protected version")
    verify.add_argument("--json", type=Path, help="also write the measurements to this JSON file")
    verify.add_argument("--no-protection-check", action="store_true", help="skip training the twin surrogates")
    verify.add_argument("--no-visqol", action="store_true", help="skip ViSQOL (the slowest measure)")
    verify.add_argument("--fail-if-audible", action="store_true",
                        help=f"exit {EXIT_SOME_FAILED} when the verdict is audible by these checks (for scripts)")
    verify.add_argument("--seed", type=int, default=0, help="seed of the twin surrogates (default 0)")
    verify.add_argument("--steps", type=int, default=60, help="training steps of each twin surrogate (default 60)")
    verify.set_defaults(run=_run_verify)

    train = command(commands, "train", "train a generative model (a white-box target) on audio or MIDI files",
                    "harmonycloak train song.wav -o model.pt",
                    "harmonycloak train chorales/*.mid -o gan.pt --family musegan --steps 500")
    train.add_argument("inputs", nargs="+", type=Path, metavar="FILE", help="audio files, or MIDI files (not both)")
    train.add_argument("-o", "--output", type=Path, required=True, help="checkpoint file to write")
    train.add_argument("--family", help="model family (default ar-transformer for audio, musegan for MIDI; "
                                        "symphonynet for MIDI too)")
    train.add_argument("--preset", default="default", help="model size preset (default, tiny)")
    train.add_argument("--steps", type=int, default=300, help="training steps (default 300)")
    train.add_argument("--seed", type=int, default=0, help="seed of the initialisation and the batches (default 0)")
    train.set_defaults(run=_run_train)

    bench = command(commands, "bench", "benchmarks that print figures",
                    "harmonycloak bench speed", "harmonycloak bench unlearnability --suite smoke")
    suites = bench.add_subparsers(required=True, metavar="SUITE")
    speed = command(suites, "speed", "real-time factor and peak memory of protection",
                    "harmonycloak bench speed --duration-s 60 --modes blackbox")
    speed.add_argument("--input", type=Path, help="audio to time (default: the example song looped to --duration-s)")
    speed.add_argument("--duration-s", type=float, default=180.0, help="length of the track to time (default 180)")
    speed.add_argument("--modes", nargs="+", choices=defaults.MODES, default=list(defaults.MODES),
                       help="the modes to time (default both)")
    speed.add_argument("--cloak", choices=defaults.CLOAKS, default=ProtectionSettings.cloak,
                       help="the cloak to time (default: protect's)")
    speed.add_argument("--objective", choices=defaults.OBJECTIVES, default=ProtectionSettings.objective,
                       help="the objective to time (default: protect's)")
    speed.add_argument("--zoo-models", nargs="+", metavar="NAME", default=None,
                       help="black-box: the zoo models protect reads (as protect --zoo-models; default: the objective's)")
    speed.add_argument("--device", choices=defaults.DEVICES, default=ProtectionSettings.device,
                       help="where to compute (default auto)")
    speed.add_argument("--memory-duration-s", type=float, default=600.0,
                       help="length of the track whose peak memory is measured (default 600 = 10 minutes; 0: none)")
    speed.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    speed.set_defaults(run=_run_bench_speed)
    attackers = command(suites, "attackers", "how long the benchmark's attackers train here, and a suite's trainings",
                        "harmonycloak bench attackers --suite full --device cuda",
                        "harmonycloak bench attackers --suite standard --families ar-transformer --steps 5")
    attackers.add_argument("--suite", choices=["smoke", "standard", "full"], default="full",
                           help="the suite whose attackers (size, recipe, conditions) are timed (default full)")
    attackers.add_argument("--device", choices=defaults.DEVICES, default="auto", help="where to train (default auto)")
    attackers.add_argument("--steps", type=int, default=20, help="timed training steps per attacker (default 20)")
    attackers.add_argument("--families", nargs="+", metavar="FAMILY", help="audio families to time (default: the suite's)")
    attackers.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    attackers.set_defaults(run=_run_bench_attackers)
    unlearn = command(suites, "unlearnability", "how much attackers learn from protected songs (paper §5–7)",
                      "harmonycloak bench unlearnability --suite smoke",
                      "harmonycloak bench unlearnability --suite standard --parts mimicry --methods masked-cue")
    unlearn.add_argument("--suite", choices=["smoke", "standard", "full"], default="smoke",
                         help="smoke: plumbing in minutes; standard: the reference machine's report; full: a GPU's")
    unlearn.add_argument("--out", type=Path, default=None, help="report folder (default reports/unlearnability-SUITE)")
    unlearn.add_argument("--seeds", type=int, nargs="+", help="seeds to run instead of the suite's")
    unlearn.add_argument("--parts", nargs="+", choices=PARTS,
                         help="run only these parts: the threat models scratch and mimicry, the paper's tiny "
                              "setting (audio, style), midi (default: the suite's)")
    unlearn.add_argument("--jobs", type=int, default=None,
                         help="run this many seeds of the threat models at a time, one process each (default: the suite's)")
    unlearn.add_argument("--methods", nargs="+", metavar="METHOD",
                         help="threat-model methods to run instead of the suite's, e.g. masked-cue cue-10db "
                              "(each with its random control and 'none'; names in docs/benchmark.md); MIDI "
                              "methods (midi-maxloss-whitebox, ...) replace the MIDI families' own")
    unlearn.add_argument("--families", nargs="+", metavar="FAMILY",
                         help="attacker families of the threat models instead of the suite's, e.g. ar-transformer "
                              "or symphonynet (MIDI: T2 only)")
    unlearn.add_argument("--strength", choices=defaults.STRENGTHS,
                         help="the strength the threat models' releases run at instead of medium (the curve of "
                              "protection against audibility)")
    unlearn.add_argument("--scratch-preset", choices=("small", "zoo"),
                         help="the size of every family's T1 attackers trained from scratch instead of the "
                              "suite's (zoo: the zoo's pretrained size, which memorises its corpus)")
    unlearn.add_argument("--scratch-steps", type=_positive_int, metavar="N",
                         help="every family's T1 training steps instead of the suite's")
    unlearn.add_argument("--scratch-learning-rate", type=_positive_float, metavar="LR",
                         help="every family's T1 learning rate instead of the suite's")
    unlearn.add_argument("--mimicry-steps", type=_positive_int, metavar="N",
                         help="T2's fine-tuning steps instead of the suite's (an attacker who trains on longer)")
    unlearn.add_argument("--mimicry-recipe", choices=defaults.FINETUNE_KINDS,
                         help="how T2's attacker fine-tunes instead of the suite's full fine-tune: only the last "
                              "layers, or low-rank adapters (lora)")
    unlearn.add_argument("--mimicry-learning-rate", type=_positive_float, metavar="LR",
                         help="T2's fine-tuning learning rate instead of the suite's (adapters usually take more)")
    unlearn.add_argument("--probe-steps", type=_positive_int, nargs="+", metavar="N",
                         help="also measure every attacker after these steps of its training (both threat models; "
                              "the report adds PS along the training: how an effect grows or fades)")
    unlearn.add_argument("--release-steps", type=_positive_int, metavar="N",
                         help="the optimised releases' PGD steps per round instead of the suite's (their "
                              "optimisation effort; protect takes 20)")
    unlearn.add_argument("--bound-rule", choices=defaults.BOUND_RULES,
                         help="the masked cloak's bound rule of the threat models' releases and their random "
                              "control instead of bin (protect --bound-rule)")
    unlearn.add_argument("--eot", nargs="+", choices=tuple(ATTACKS), metavar="PURIFICATION",
                         help="the optimised releases are made to survive these purifications too (protect --eot)")
    unlearn.add_argument("--attacks", nargs="*", choices=tuple(ATTACKS), metavar="PURIFICATION",
                         help="the purifications applied to the attacked methods in both threat models instead of "
                              "the suite's (given alone: none, no attacked columns)")
    unlearn.add_argument("--style-judged", nargs="+", metavar="FAMILY",
                         help="MIDI families (musegan, symphonynet) whose written music T2's style measures judge "
                              "instead of the suite's (SymphonyNet's sampler takes about 70 s a condition on one core)")
    unlearn.add_argument("--device", choices=defaults.DEVICES,
                         help="where the threat models' attackers train instead of the suite's (auto: CUDA if present)")
    unlearn.add_argument("--export-data", type=Path, metavar="NPZ",
                         help="write the threat models' music of this run to a file and stop (for a machine "
                              "without the corpus and the soundtracks)")
    unlearn.add_argument("--data", type=Path, metavar="NPZ",
                         help="read the threat models' music from a file written by --export-data")
    unlearn.add_argument("--combine", type=Path, nargs="+", metavar="RESULTS_JSON",
                         help="write one report from earlier runs' results.json instead of running")
    unlearn.set_defaults(run=_run_bench_unlearnability)
    forget = command(suites, "unlearning", "model-side forgetting of songs, measured beside the cloak",
                     "harmonycloak bench unlearning --suite smoke",
                     "harmonycloak bench unlearning --suite standard --methods npo masked-cue")
    forget.add_argument("--suite", choices=["smoke", "standard", "full"], default="smoke",
                        help="smoke: plumbing in minutes; standard: the reference machine's report; full: a GPU's")
    forget.add_argument("--out", type=Path, default=None,
                        help="report folder (default reports/unlearning-SUITE); writes unlearning.md and "
                             "unlearning-headline.json")
    forget.add_argument("--seeds", type=int, nargs="+", help="seeds to run instead of the suite's")
    forget.add_argument("--jobs", type=int, default=None,
                        help="run this many seeds at a time, one process each (default: the suite's)")
    forget.add_argument("--methods", nargs="+", metavar="METHOD",
                        help="unlearning methods and cloaks to run instead of the suite's, e.g. npo masked-cue")
    forget.add_argument("--families", nargs="+", metavar="FAMILY",
                        help="attacker families instead of the suite's, e.g. ar-transformer")
    forget.set_defaults(run=_run_bench_unlearning)
    catalogue = command(suites, "catalogue", "tracks per hour of a folder with --jobs 1 and N, and what a kill costs",
                        "harmonycloak bench catalogue --folder /usr/share/games/wesnoth/1.16/data/core/music "
                        "--tracks 6 --jobs 1 2")
    catalogue.add_argument("--folder", type=Path, required=True, help="a folder of real tracks (the shortest are used)")
    catalogue.add_argument("--tracks", type=_positive_int, default=6, help="how many tracks (default 6)")
    catalogue.add_argument("--jobs", type=_positive_int, nargs="+", default=[1, 2],
                           help="the --jobs values to time, the first also killed and resumed (default 1 2)")
    catalogue.add_argument("--threads", type=_positive_int,
                           help="torch threads of the whole run (OMP_NUM_THREADS; default: torch's own)")
    catalogue.add_argument("--protect-args", default="",
                           help="further options of protect, in quotes, e.g. \"--preview 20\" (default: none)")
    catalogue.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    catalogue.set_defaults(run=_run_bench_catalogue)
    metrics = command(suites, "metrics", "the paper's symbolic metrics (EB, UPC, QN, TD) on a corpus",
                      "harmonycloak bench metrics --collection bach --limit 20")
    metrics.add_argument("--collection", default="bach", help="music21 corpus collection (default bach)")
    metrics.add_argument("--limit", type=int, help="read only the first N source files")
    metrics.add_argument("--steps-per-beat", type=int, default=12, help="piano-roll resolution (default 12)")
    metrics.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    metrics.set_defaults(run=_run_bench_metrics)

    from harmonycloak.app.cli import add_serve_command
    from harmonycloak.zoo.cli import add_zoo_commands

    add_zoo_commands(commands, command)
    add_serve_command(commands, command)
    return parser


def _run_protect(arguments: argparse.Namespace) -> int:
    from harmonycloak.batch.run import run_batch
    from harmonycloak.batch.worker import BatchOptions
    from harmonycloak.io.paths import expand_inputs

    settings = ProtectionSettings(
        mode=arguments.mode, model_checkpoint=arguments.model, strength=arguments.strength, cloak=arguments.cloak,
        bound_rule=arguments.bound_rule, objective=arguments.objective, surrogates=arguments.surrogates,
        zoo_models=tuple(arguments.zoo_models) if arguments.zoo_models else None, window_ms=arguments.window_ms,
        seed=arguments.seed, device=arguments.device, preview_s=arguments.preview,
        stems=arguments.stems and len(arguments.inputs) == 1, model_preset=arguments.preset,
        max_rounds=arguments.rounds, songs_per_batch=arguments.songs_per_batch, eot=tuple(arguments.eot),
    )
    batch = len(arguments.inputs) > 1 or any(path.is_dir() for path in arguments.inputs)
    report = arguments.report or ("json" if batch else "png")
    options = BatchOptions(settings, write_report=report != "none", picture=report == "png")
    log = _printer(arguments)
    if arguments.stems and len(arguments.inputs) > 1:
        return _run_stems(arguments, options, log)

    output = Path(arguments.output) if arguments.output else None
    output_is_folder = output is not None and (batch or arguments.output.endswith(("/", "\\")) or output.is_dir())
    if output_is_folder:
        output.mkdir(parents=True, exist_ok=True)
    pairs = expand_inputs(arguments.inputs, output)
    manifest_folder = None
    if batch and output_is_folder:
        manifest_folder = output
    elif batch and output is None and len(arguments.inputs) == 1:
        manifest_folder = arguments.inputs[0]  # one folder, outputs beside its files
    summary = run_batch(pairs, options, manifest_folder=manifest_folder, overwrite=arguments.overwrite,
                        jobs=arguments.jobs, backend=arguments.backend, address=arguments.address, log=log,
                        show_progress=not arguments.quiet)
    if arguments.json:
        print(json.dumps(summary.as_json(), indent=2))
    if batch:
        log("summary", f"{len(summary.protected)} protected, {len(summary.complete)} complete already, "
                       f"{len(summary.not_ours)} left alone (output exists), {len(summary.failed)} failed in {summary.seconds:.1f} s"
                       + (f" (manifest: {summary.manifest_path})" if summary.manifest_path else ""))
    if summary.failed:
        log("error", f"{len(summary.failed)} of {len(pairs)} file(s) failed")
        return EXIT_SOME_FAILED
    return EXIT_OK


def _run_stems(arguments: argparse.Namespace, options, log) -> int:
    from harmonycloak.flows.audio.protect import protect_stems
    from harmonycloak.progress import progress_bar

    with progress_bar("stems") as progress:
        results = protect_stems(arguments.inputs, arguments.output and Path(arguments.output), options.settings,
                                overwrite=arguments.overwrite, write_report=options.write_report,
                                picture=options.picture, progress=None if arguments.quiet else progress)
    for result in results:
        log("protected", f"protected {result.input_path} → {result.output_path}")
    return EXIT_OK


def _printer(arguments: argparse.Namespace):
    """log(level, line) as -q, -v and --json ask: errors always (stderr); per-file lines unless
    quiet (stdout, or stderr under --json); "verbose" lines only with -v."""
    from harmonycloak.progress import print_line

    def log(level: str, line: str) -> None:
        if level == "error":
            print_line(line, sys.stderr)
        elif arguments.quiet or (level == "verbose" and not arguments.verbose):
            return
        else:
            print_line(line, sys.stderr if arguments.json or level == "warning" else sys.stdout)

    return log


def _run_verify(arguments: argparse.Namespace) -> int:
    from harmonycloak import verify
    from harmonycloak.flows.dispatch import format_verification
    from harmonycloak.io.atomic import write_text

    result = verify(arguments.original, arguments.protected, protection_check=not arguments.no_protection_check,
                    visqol=not arguments.no_visqol, seed=arguments.seed, training_steps=arguments.steps)
    text = format_verification(result)
    print(text.splitlines()[-1] if arguments.quiet else text)  # -q: the verdict line alone
    if arguments.json:
        write_text(arguments.json, json.dumps(result, indent=2) + "\n")
    if arguments.fail_if_audible and result["verdict"]["inaudible"] is False:
        return EXIT_SOME_FAILED
    return EXIT_OK


def _run_train(arguments: argparse.Namespace) -> int:
    from harmonycloak import train
    from harmonycloak.flows.dispatch import flows_for_all

    family = arguments.family or flows_for_all(arguments.inputs).default_family
    path, curve = train(arguments.inputs, arguments.output, family, arguments.preset, arguments.steps, arguments.seed)
    print(f"trained {family} ({arguments.preset}) for {len(curve)} steps: "
          f"loss {curve[0]:.4f} → {curve[-1]:.4f}; checkpoint {path}")
    return EXIT_OK


def _run_bench_speed(arguments: argparse.Namespace) -> int:
    from harmonycloak.bench.speed import run_speed_benchmark

    run_speed_benchmark(arguments.input, arguments.duration_s, arguments.modes, arguments.cloak, arguments.device,
                        arguments.memory_duration_s, arguments.json, arguments.objective,
                        tuple(arguments.zoo_models) if arguments.zoo_models else None)
    return EXIT_OK


def _run_bench_attackers(arguments: argparse.Namespace) -> int:
    from harmonycloak.bench.attacker_speed import run_attacker_speed

    run_attacker_speed(arguments.suite, arguments.device, arguments.steps,
                       tuple(arguments.families) if arguments.families else None, arguments.json)
    return EXIT_OK


def _run_bench_unlearnability(arguments: argparse.Namespace) -> int:
    from harmonycloak.bench.unlearnability.benchmark import run_unlearnability

    out = arguments.out or Path("reports") / f"unlearnability-{arguments.suite}"
    if arguments.combine:
        from harmonycloak.bench.unlearnability.benchmark import combine_reports

        combine_reports(arguments.suite, arguments.combine, out)
        return EXIT_OK
    replacements = dict(methods=tuple(arguments.methods) if arguments.methods else None,
                        families=tuple(arguments.families) if arguments.families else None,
                        strength=arguments.strength, scratch_preset=arguments.scratch_preset,
                        scratch_steps=arguments.scratch_steps, eot=tuple(arguments.eot or ()),
                        attacks=None if arguments.attacks is None else tuple(arguments.attacks),
                        device=arguments.device, release_steps=arguments.release_steps,
                        bound_rule=arguments.bound_rule, mimicry=_mimicry_recipe(arguments),
                        probe_steps=tuple(arguments.probe_steps) if arguments.probe_steps else None,
                        scratch_learning_rate=arguments.scratch_learning_rate,
                        style_judged=tuple(arguments.style_judged) if arguments.style_judged else None)
    seeds = tuple(arguments.seeds) if arguments.seeds else None
    parts = tuple(arguments.parts) if arguments.parts else None
    if arguments.export_data:
        from harmonycloak.bench.unlearnability.benchmark import adjusted_suite, export_threat_data
        from harmonycloak.bench.unlearnability.suites import get_suite

        export_threat_data(adjusted_suite(get_suite(arguments.suite, seeds, parts), **replacements),
                           arguments.export_data)
        return EXIT_OK
    run_unlearnability(arguments.suite, out, seeds, parts=parts, jobs=arguments.jobs, data_bundle=arguments.data,
                       **replacements)
    return EXIT_OK


def _run_bench_unlearning(arguments: argparse.Namespace) -> int:
    from harmonycloak.bench.unlearning.benchmark import run_unlearning

    run_unlearning(arguments.suite, arguments.out or Path("reports") / f"unlearning-{arguments.suite}",
                   tuple(arguments.seeds) if arguments.seeds else None, jobs=arguments.jobs,
                   methods=tuple(arguments.methods) if arguments.methods else None,
                   families=tuple(arguments.families) if arguments.families else None)
    return EXIT_OK


def _run_bench_catalogue(arguments: argparse.Namespace) -> int:
    import shlex

    from harmonycloak.bench.catalogue import run_catalogue_benchmark

    run_catalogue_benchmark(arguments.folder, arguments.tracks, arguments.jobs, shlex.split(arguments.protect_args),
                            arguments.threads, arguments.json)
    return EXIT_OK


def _run_bench_metrics(arguments: argparse.Namespace) -> int:
    from harmonycloak.bench.symbolic_metrics import run_metrics_benchmark

    run_metrics_benchmark(arguments.collection, arguments.limit, arguments.steps_per_beat, arguments.json)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
