"""`harmonycloak bench speed`: real-time factor and peak memory of protection.

Each measurement runs `protect_file` in a fresh child process on a WAV file (44.1 kHz stereo
16-bit unless --input says otherwise), so that its peak resident memory (ru_maxrss) is its
own, imports and all. The real-time factor is wall time from reading the input to writing
the output and its report, divided by the audio's duration. CPU time is printed beside it:
on a machine busy with other work the wall time grows but the CPU time barely does, so
CPU time ÷ threads ÷ duration is the real-time factor the run would reach on an idle machine
if all its threads were always busy (a lower bound of the idle figure).

Default input: the example song that ships with the project, looped to the asked duration
(real music; the loop seam is the only artificial part). White-box runs protect against an
ar-transformer checkpoint trained briefly on the same track (untimed).
Peak memory is measured on a 10-minute track with one min-min round (memory does not grow
with rounds: every round walks the same segments with the same batch size); a length of 0
skips that run.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile
import torch

from harmonycloak.errors import SettingsError
from harmonycloak.examples import example_path

EXAMPLE_SONG = example_path()


def looped_track(source: Path, duration_s: float, destination: Path) -> Path:
    """Write `source` looped to `duration_s` as a 16-bit WAV (channels and rate kept)."""
    from harmonycloak.io.audio import read_audio

    audio = read_audio(source)
    frames = round(duration_s * audio.sample_rate_hz)
    repeats = -(-frames // audio.num_frames)
    samples = np.tile(audio.samples, (1, repeats))[:, :frames]
    soundfile.write(destination, samples.T, audio.sample_rate_hz, subtype="PCM_16")
    return destination


def run_speed_benchmark(input_path: Path | None, duration_s: float, modes: list[str], cloak: str | None, device: str,
                        memory_duration_s: float, json_path: Path | None, objective: str | None = None,
                        zoo_models: tuple[str, ...] | None = None) -> dict:
    """Time `protect` of the cloak, objective and black-box zoo models named (None: protect's defaults
    for audio) in each mode."""
    from harmonycloak.flows.audio.train import train_audio_model
    from harmonycloak.settings import ProtectionSettings

    if not duration_s > 0:
        raise SettingsError(f"--duration-s must be a positive number of seconds, not {duration_s}")
    if not memory_duration_s >= 0:
        raise SettingsError(f"--memory-duration-s must be 0 (no memory run) or more seconds, not {memory_duration_s}")
    protected_with = ProtectionSettings(cloak=cloak, objective=objective).resolved("audio")
    cloak, objective = protected_with.cloak, protected_with.objective
    results: dict = {"cloak": cloak, "bound_rule": protected_with.bound_rule, "objective": objective,
                     "zoo_models": list(zoo_models) if zoo_models else None, "device": device, "runs": []}
    with tempfile.TemporaryDirectory(prefix="harmonycloak-bench-") as folder:
        folder = Path(folder)
        track = input_path or looped_track(EXAMPLE_SONG, duration_s, folder / "track.wav")
        long_track = (looped_track(input_path or EXAMPLE_SONG, memory_duration_s, folder / "long.wav")
                      if memory_duration_s > 0 else None)
        checkpoint = None
        if "whitebox" in modes:
            checkpoint, _ = train_audio_model([track], folder / "target.pt", steps=100)
        for mode in modes:
            for path, rounds, purpose in ((track, None, "speed"), (long_track, 1, "memory")):
                if path is None:
                    continue
                run = _child_run(path, folder / f"out-{mode}-{purpose}.wav", mode, checkpoint, cloak, device, rounds,
                                 objective, zoo_models if mode == "blackbox" else None)
                run.update(mode=mode, purpose=purpose)
                results["runs"].append(run)
                print(_describe(run), flush=True)
    if json_path:
        json_path.write_text(json.dumps(results, indent=2) + "\n")
    return results


def _describe(run: dict) -> str:
    what = f"{run['mode']:>8} {run['purpose']:>6}: {run['duration_s']:6.1f} s of {run['sample_rate_hz']} Hz × {run['channels']} ch"
    return (f"{what}  real-time factor {run['real_time_factor']:.3f}  ({run['elapsed_s']:.1f} s; CPU time "
            f"{run['cpu_s']:.1f} s on {run['cpu_threads']} threads)  "
            f"peak memory {run['peak_memory_mb']:.0f} MB  rounds {run['rounds_run']}  device {run['device']}")


def _child_run(track: Path, output: Path, mode: str, checkpoint: Path | None, cloak: str, device: str,
               max_rounds: int | None, objective: str, zoo_models: tuple[str, ...] | None = None) -> dict:
    request = {"track": str(track), "output": str(output), "mode": mode, "checkpoint": str(checkpoint) if checkpoint else None,
               "cloak": cloak, "device": device, "max_rounds": max_rounds, "objective": objective,
               "zoo_models": list(zoo_models) if zoo_models else None}
    completed = subprocess.run([sys.executable, "-m", "harmonycloak.bench.speed", json.dumps(request)],
                               capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"benchmark child failed:\n{completed.stderr[-4000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _child_main(request: dict) -> None:
    from dataclasses import replace

    from harmonycloak.flows.audio.protect import protect_audio_file
    from harmonycloak.settings import ProtectionSettings

    settings = ProtectionSettings(mode=request["mode"], model_checkpoint=request["checkpoint"] and Path(request["checkpoint"]),
                                  cloak=request["cloak"], device=request["device"], objective=request["objective"],
                                  zoo_models=tuple(request["zoo_models"]) if request.get("zoo_models") else None)
    if request["max_rounds"]:
        settings = replace(settings, max_rounds=request["max_rounds"])
    started, cpu_started = time.perf_counter(), time.process_time()
    result = protect_audio_file(request["track"], request["output"], settings, overwrite=True)
    elapsed_s, cpu_s = time.perf_counter() - started, time.process_time() - cpu_started
    info = soundfile.info(request["track"])
    print(json.dumps({
        "elapsed_s": elapsed_s,
        "duration_s": info.duration,
        "sample_rate_hz": info.samplerate,
        "channels": info.channels,
        "real_time_factor": elapsed_s / info.duration,
        "cpu_s": cpu_s,
        "cpu_threads": torch.get_num_threads(),
        "peak_memory_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rounds_run": len(result.report["rounds"]["protected_loss"]),
        "device": result.report["device"],
    }))


if __name__ == "__main__":
    _child_main(json.loads(sys.argv[1]))
