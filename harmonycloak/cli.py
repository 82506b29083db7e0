"""The `harmonycloak` command: a thin shell over the public API.

    harmonycloak protect INPUT... [-o OUT] [--mode blackbox|whitebox] [--model CKPT] ...
    harmonycloak verify ORIGINAL PROTECTED
    harmonycloak train AUDIO_OR_MIDI... -o MODEL.pt
    harmonycloak bench speed
    harmonycloak bench unlearnability --suite smoke|standard|full [--out DIR] [--seeds N...]
    harmonycloak bench unlearning --suite smoke|standard|full [--out DIR] [--seeds N...]
    harmonycloak zoo train NAME [--out DIR] | harmonycloak zoo list

Errors a user can cause are printed on one line (`error: FILE: problem`); with several
inputs, one bad file does not stop the others and the exit code says some failed.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

from harmonycloak import settings as defaults
from harmonycloak.errors import HarmonyCloakError, OutputExistsError
from harmonycloak.settings import ProtectionSettings

PARTS = ("scratch", "mimicry", "audio", "style", "midi")  # the parts of `bench unlearnability` (its suites check them)

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE = 0, 1, 2


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    arguments = parser.parse_args(argv)
    try:
        return arguments.run(arguments)
    except HarmonyCloakError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_SOME_FAILED
    except OSError as error:  # a file system failure that no step turned into a HarmonyCloakError
        print(f"error: {f'{error.filename}: ' if error.filename else ''}{error.strerror or error}", file=sys.stderr)
        return EXIT_SOME_FAILED
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="harmonycloak", description="Make music unlearnable for generative AI.")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    protect = commands.add_parser("protect", help="protect audio files or folders of them")
    protect.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="audio or MIDI files, or folders")
    protect.add_argument("-o", "--output", help="output file (one input) or folder (several inputs, or a name ending in /)")
    protect.add_argument("--mode", choices=defaults.MODES, default=ProtectionSettings.mode,
                         help="blackbox: a bag of surrogate models (default); whitebox: the model given with --model")
    protect.add_argument("--model", type=Path, help="white-box: checkpoint of the model to protect against")
    protect.add_argument("--strength", choices=defaults.STRENGTHS, default=ProtectionSettings.strength,
                         help=f"how close the noise may come to what masks it (default {ProtectionSettings.strength})")
    protect.add_argument("--cloak", choices=defaults.CLOAKS, default=ProtectionSettings.cloak,
                         help="dominant: one tone per window at the dominant note (the paper); "
                              "masked: every bin under the masking threshold; gain: smooth level changes of at most "
                              "±0.5/1/2 dB (low/medium/high) on the music itself, no added noise")
    protect.add_argument("--objective", choices=defaults.OBJECTIVES, default=ProtectionSettings.objective,
                         help="what the noise is optimised for (audio): minmin, the paper's error-minimising noise; "
                              "maxloss, error-maximising noise against models fine-tuned on the song; "
                              "future-cue, energy that announces the next frame (needs no model, fast); "
                              "embedding-shift, the zoo's encoder hears a decoy style; gradient-matching, a "
                              "training step on the song moves a model toward a decoy of it (docs/objectives.md)")
    protect.add_argument("--surrogates", choices=defaults.SURROGATE_KINDS, default=ProtectionSettings.surrogates,
                         help="black-box min-min: random, the paper's bag of randomly initialised models; zoo, the "
                              "pretrained models that ship with harmonycloak (the other objectives always use the zoo)")
    low_ms, high_ms = defaults.WINDOW_MS_RANGE
    protect.add_argument("--window-ms", type=float, default=ProtectionSettings.window_ms,
                         help=f"noise window, {low_ms:g} to {high_ms:g} ms (default {ProtectionSettings.window_ms:g})")
    protect.add_argument("--seed", type=int, default=ProtectionSettings.seed, help="same seed, same output (default 0)")
    protect.add_argument("--device", choices=defaults.DEVICES, default=ProtectionSettings.device)
    protect.add_argument("--preview", type=float, metavar="SECONDS", help="protect only this many seconds from the middle")
    protect.add_argument("--stems", action="store_true",
                         help="the inputs are stems of one song (or one multichannel file of stems): noise per stem")
    protect.add_argument("--overwrite", action="store_true", help="allow writing over an existing output or the input")
    protect.add_argument("--no-report", action="store_true", help="skip the JSON report and picture")
    protect.add_argument("--preset", choices=defaults.MODEL_PRESETS, default=ProtectionSettings.model_preset,
                         help=argparse.SUPPRESS)
    protect.add_argument("--rounds", type=int, default=ProtectionSettings.max_rounds,
                         help=f"min-min rounds at most (default {ProtectionSettings.max_rounds})")
    protect.set_defaults(run=_run_protect)

    verify = commands.add_parser("verify", help="how audible and how protected a protected file is")
    verify.add_argument("original", type=Path)
    verify.add_argument("protected", type=Path)
    verify.add_argument("--json", type=Path, help="also write the measurements to this JSON file")
    verify.add_argument("--no-protection-check", action="store_true", help="skip training the twin surrogates")
    verify.add_argument("--no-visqol", action="store_true", help="skip ViSQOL (the slowest measure)")
    verify.add_argument("--seed", type=int, default=0)
    verify.add_argument("--steps", type=int, default=60, help="training steps of each twin surrogate (default 60)")
    verify.set_defaults(run=_run_verify)

    train = commands.add_parser("train", help="train a generative model (a white-box target) on audio or MIDI files")
    train.add_argument("inputs", nargs="+", type=Path, metavar="FILE")
    train.add_argument("-o", "--output", type=Path, required=True, help="checkpoint file to write")
    train.add_argument("--family", help="model family (default ar-transformer for audio, musegan for MIDI; "
                                        "symphonynet for MIDI too)")
    train.add_argument("--preset", default="default", help="model size preset (default, tiny)")
    train.add_argument("--steps", type=int, default=300)
    train.add_argument("--seed", type=int, default=0)
    train.set_defaults(run=_run_train)

    bench = commands.add_parser("bench", help="benchmarks that print figures")
    suites = bench.add_subparsers(required=True, metavar="SUITE")
    speed = suites.add_parser("speed", help="real-time factor and peak memory of protection")
    speed.add_argument("--input", type=Path, help="audio to time (default: the example song looped to --duration-s)")
    speed.add_argument("--duration-s", type=float, default=180.0)
    speed.add_argument("--modes", nargs="+", choices=defaults.MODES, default=list(defaults.MODES))
    speed.add_argument("--cloak", choices=defaults.CLOAKS, default=ProtectionSettings.cloak)
    speed.add_argument("--objective", choices=defaults.OBJECTIVES, default=ProtectionSettings.objective)
    speed.add_argument("--device", choices=defaults.DEVICES, default=ProtectionSettings.device)
    speed.add_argument("--memory-duration-s", type=float, default=600.0,
                       help="length of the track whose peak memory is measured (default 600 = 10 minutes)")
    speed.add_argument("--json", type=Path)
    speed.set_defaults(run=_run_bench_speed)
    unlearn = suites.add_parser("unlearnability", help="how much attackers learn from protected songs (paper §5–7)")
    unlearn.add_argument("--suite", choices=["smoke", "standard", "full"], default="smoke")
    unlearn.add_argument("--out", type=Path, default=None, help="report folder (default reports/unlearnability-SUITE)")
    unlearn.add_argument("--seeds", type=int, nargs="+", help="seeds to run instead of the suite's")
    unlearn.add_argument("--parts", nargs="+", choices=PARTS,
                         help="run only these parts: the threat models scratch and mimicry, the paper's tiny "
                              "setting (audio, style), midi (default: the suite's)")
    unlearn.add_argument("--jobs", type=int, default=None,
                         help="run this many seeds of the threat models at a time, one process each (default: the suite's)")
    unlearn.add_argument("--methods", nargs="+", metavar="METHOD",
                         help="threat-model methods to run instead of the suite's, e.g. masked-cue cue-10db "
                              "(each with its random control and 'none'; names in docs/benchmark.md)")
    unlearn.add_argument("--families", nargs="+", metavar="FAMILY",
                         help="attacker families of the threat models instead of the suite's, e.g. ar-transformer")
    unlearn.add_argument("--strength", choices=defaults.STRENGTHS,
                         help="the strength the threat models' releases run at instead of medium (the curve of "
                              "protection against audibility)")
    unlearn.add_argument("--combine", type=Path, nargs="+", metavar="RESULTS_JSON",
                         help="write one report from earlier runs' results.json instead of running")
    unlearn.set_defaults(run=_run_bench_unlearnability)
    forget = suites.add_parser("unlearning", help="model-side forgetting of songs, measured beside the cloak")
    forget.add_argument("--suite", choices=["smoke", "standard", "full"], default="smoke")
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
    metrics = suites.add_parser("metrics", help="the paper's symbolic metrics (EB, UPC, QN, TD) on a corpus")
    metrics.add_argument("--collection", default="bach", help="music21 corpus collection (default bach)")
    metrics.add_argument("--limit", type=int, help="read only the first N source files")
    metrics.add_argument("--steps-per-beat", type=int, default=12, help="piano-roll resolution (default 12)")
    metrics.add_argument("--json", type=Path)
    metrics.set_defaults(run=_run_bench_metrics)

    from harmonycloak.app.cli import add_serve_command
    from harmonycloak.zoo.cli import add_zoo_commands

    add_zoo_commands(commands)
    add_serve_command(commands)
    return parser


def _run_protect(arguments: argparse.Namespace) -> int:
    from harmonycloak import protect
    from harmonycloak.flows.audio.protect import protect_stems
    from harmonycloak.io.paths import check_input, expand_inputs
    from harmonycloak.progress import progress_bar

    settings = ProtectionSettings(
        mode=arguments.mode, model_checkpoint=arguments.model, strength=arguments.strength, cloak=arguments.cloak,
        objective=arguments.objective, surrogates=arguments.surrogates,
        window_ms=arguments.window_ms, seed=arguments.seed, device=arguments.device, preview_s=arguments.preview,
        stems=arguments.stems and len(arguments.inputs) == 1, model_preset=arguments.preset,
        max_rounds=arguments.rounds,
    )
    if arguments.stems and len(arguments.inputs) > 1:
        with progress_bar("stems") as progress:
            results = protect_stems(arguments.inputs, arguments.output and Path(arguments.output), settings,
                                    overwrite=arguments.overwrite,
                                    write_report=not arguments.no_report, progress=progress)
        for result in results:
            print(f"protected {result.input_path} → {result.output_path}")
        return EXIT_OK

    output = Path(arguments.output) if arguments.output else None
    if arguments.output and arguments.output.endswith(("/", "\\")):
        output.mkdir(parents=True, exist_ok=True)  # an explicit folder
    jobs = expand_inputs(arguments.inputs, output)
    failures = 0
    for input_path, output_path in jobs:
        try:
            check_input(input_path)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                with progress_bar(input_path.name) as progress:
                    result = protect(input_path, output_path, settings, overwrite=arguments.overwrite,
                                     write_report=not arguments.no_report, progress=progress)
            for warning in caught:
                print(f"warning: {warning.message}", file=sys.stderr)
            print(f"protected {input_path} → {result.output_path}"
                  + (f"  (report: {result.report_path})" if result.report_path else ""))
        except OutputExistsError as error:  # a second run over a folder redoes nothing
            print(f"skipped {input_path}: {error}")
        except HarmonyCloakError as error:
            failures += 1
            print(f"error: {error}", file=sys.stderr)
    if failures:
        print(f"{failures} of {len(jobs)} file(s) failed", file=sys.stderr)
        return EXIT_SOME_FAILED
    return EXIT_OK


def _run_verify(arguments: argparse.Namespace) -> int:
    from harmonycloak import verify
    from harmonycloak.flows.dispatch import format_verification
    from harmonycloak.io.atomic import write_text

    result = verify(arguments.original, arguments.protected, protection_check=not arguments.no_protection_check,
                    visqol=not arguments.no_visqol, seed=arguments.seed, training_steps=arguments.steps)
    print(format_verification(result))
    if arguments.json:
        write_text(arguments.json, json.dumps(result, indent=2) + "\n")
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
                        arguments.memory_duration_s, arguments.json, arguments.objective)
    return EXIT_OK


def _run_bench_unlearnability(arguments: argparse.Namespace) -> int:
    from harmonycloak.bench.unlearnability.benchmark import run_unlearnability

    out = arguments.out or Path("reports") / f"unlearnability-{arguments.suite}"
    if arguments.combine:
        from harmonycloak.bench.unlearnability.benchmark import combine_reports

        combine_reports(arguments.suite, arguments.combine, out)
        return EXIT_OK
    run_unlearnability(arguments.suite, out, tuple(arguments.seeds) if arguments.seeds else None,
                       parts=tuple(arguments.parts) if arguments.parts else None, jobs=arguments.jobs,
                       methods=tuple(arguments.methods) if arguments.methods else None,
                       families=tuple(arguments.families) if arguments.families else None,
                       strength=arguments.strength)
    return EXIT_OK


def _run_bench_unlearning(arguments: argparse.Namespace) -> int:
    from harmonycloak.bench.unlearning.benchmark import run_unlearning

    run_unlearning(arguments.suite, arguments.out or Path("reports") / f"unlearning-{arguments.suite}",
                   tuple(arguments.seeds) if arguments.seeds else None, jobs=arguments.jobs,
                   methods=tuple(arguments.methods) if arguments.methods else None,
                   families=tuple(arguments.families) if arguments.families else None)
    return EXIT_OK


def _run_bench_metrics(arguments: argparse.Namespace) -> int:
    from harmonycloak.bench.symbolic_metrics import run_metrics_benchmark

    run_metrics_benchmark(arguments.collection, arguments.limit, arguments.steps_per_beat, arguments.json)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
