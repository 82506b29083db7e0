"""The app's JSON API through FastAPI's TestClient: a real protection of the example song whose
download equals the CLI's bytes, the A/B excerpts and the verdict, and the app's limits (names,
upload size, queue length, job ids, cancelling, files removed)."""

import io
import math
import zipfile
from pathlib import Path

import numpy as np
import pyloudnorm
import pytest
import soundfile

pytest.importorskip("fastapi", reason="the app's packages are not installed (pip install -e '.[app]')")
from fastapi.testclient import TestClient  # noqa: E402

from app_helpers import QUICK_FORM, cli_output_bytes, wait_until  # noqa: E402
from harmonycloak.app.app_settings import AppSettings  # noqa: E402
from harmonycloak.app.server import create_app  # noqa: E402
from harmonycloak.cli import main  # noqa: E402
from harmonycloak.flows.verdict import MEASURED_PROTECTION  # noqa: E402
from harmonycloak.settings import DEFAULT_PROTECTION  # noqa: E402

TINY = AppSettings(model_preset="tiny")


def upload(client, name, content, **form):
    return client.post("/api/jobs", files={"file": (name, content, "application/octet-stream")}, data=form)


def finished(client, job_id):
    return wait_until(lambda: (job := client.get(f"/api/jobs/{job_id}").json())["state"] in ("done", "failed", "cancelled")
                      and job, f"job {job_id}")


def tone_wav_bytes(seconds: float, rate: int = 22_050) -> bytes:
    time = np.arange(round(seconds * rate)) / rate
    buffer = io.BytesIO()
    soundfile.write(buffer, 0.3 * np.sin(2 * math.pi * 440 * time), rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def protected(example_song, tmp_path_factory):
    """(client, job, root) after protecting the example song's 3-second preview through the app."""
    root = tmp_path_factory.mktemp("app") / "root"
    with TestClient(create_app(TINY, root=root)) as client:
        response = upload(client, example_song.name, example_song.read_bytes(), **QUICK_FORM)
        assert response.status_code == 201, response.text
        yield client, finished(client, response.json()["id"]), root


def test_the_download_is_byte_for_byte_what_the_cli_writes(protected, example_song, tmp_path):
    client, job, _root = protected
    assert job["state"] == "done", job
    download = client.get(f"/api/jobs/{job['id']}/output")
    assert download.status_code == 200
    assert download.headers["content-disposition"] == 'attachment; filename="elf-land.preview.ogg"'
    assert download.content == cli_output_bytes(example_song, tmp_path)


def test_the_zip_holds_the_same_file_and_its_report(protected):
    client, job, _root = protected
    response = client.get("/api/outputs.zip")
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    assert sorted(archive.namelist()) == ["elf-land.preview.ogg", "elf-land.preview.report.json",
                                          "elf-land.preview.report.png"]
    assert archive.read("elf-land.preview.ogg") == client.get(f"/api/jobs/{job['id']}/output").content
    assert archive.read("elf-land.preview.report.png")[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_ab_excerpts_are_the_same_seconds_at_the_same_loudness(protected, example_song):
    client, job, _root = protected
    original, rate = soundfile.read(io.BytesIO(client.get(f"/api/jobs/{job['id']}/ab/original").content),
                                    always_2d=True)
    protected_excerpt, protected_rate = soundfile.read(
        io.BytesIO(client.get(f"/api/jobs/{job['id']}/ab/protected").content), always_2d=True)
    assert rate == protected_rate == 44_100 and original.shape == protected_excerpt.shape == (3 * 44_100, 2)
    # the original excerpt is the song's middle 3 seconds, decoded here by libsndfile, not by harmonycloak
    song, _ = soundfile.read(example_song, always_2d=True)
    first = (len(song) - 3 * 44_100) // 2
    assert np.max(np.abs(original - song[first : first + 3 * 44_100])) < 1e-4
    meter = pyloudnorm.Meter(rate)
    assert meter.integrated_loudness(protected_excerpt) == pytest.approx(meter.integrated_loudness(original), abs=0.01)
    # different audio all the same: the noise is there
    assert np.max(np.abs(protected_excerpt - original)) > 1e-4
    assert job["ab_seconds"] == pytest.approx(3.0)


def test_the_verdict_answers_yes_or_no_and_states_the_measured_protection(protected):
    _client, job, _root = protected
    assert job["inaudible"] in (True, False)
    answer = "yes" if job["inaudible"] else "no"
    assert job["verdict"].startswith(f"inaudible by our checks: {answer} (")
    # the default cloak of audio, whose sentence states the default's measurement
    assert job["verdict"].endswith(f"protection measured on the benchmark: {MEASURED_PROTECTION[DEFAULT_PROTECTION['audio']['cloak']]}")


def test_the_report_picture_is_served(protected):
    client, job, _root = protected
    response = client.get(f"/api/jobs/{job['id']}/report.png")
    assert response.status_code == 200 and response.content[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_job_says_nothing_of_the_servers_folders(protected):
    client, job, root = protected
    assert str(root) not in client.get("/api/jobs").text


@pytest.mark.parametrize("name", ["../evil.wav", "../../../../tmp/evil.wav", "/etc/evil.wav", "..\\evil.wav",
                                  "folder/evil.wav", ".evil.wav", "..", "evil.txt", ""])
def test_names_that_could_leave_the_apps_folder_are_refused(tmp_path, name):
    root = tmp_path / "deep" / "root"
    with TestClient(create_app(TINY, root=root)) as client:
        response = upload(client, name, tone_wav_bytes(0.5))
        assert response.status_code in (400, 422), response.text
        assert client.get("/api/jobs").json()["jobs"] == []
        written = [path for path in tmp_path.rglob("*") if path.is_file()]
        assert written == []


def test_an_upload_over_the_limit_is_refused_with_413_whether_its_length_is_stated_or_not(tmp_path):
    root = tmp_path / "root"
    limit_mb = 0.02  # 21 kB: the parsed file is checked exactly, the stream with room for the form's fields
    with TestClient(create_app(AppSettings(model_preset="tiny", max_upload_mb=limit_mb), root=root)) as client:
        assert upload(client, "song.wav", tone_wav_bytes(0.45)).status_code == 201  # 19.9 kB
        assert upload(client, "song.wav", tone_wav_bytes(0.5)).status_code == 413  # 22.1 kB
        song = tone_wav_bytes(3.0)  # 132 kB
        boundary = "harmonycloakboundary"
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"song.wav\"\r\n"
                f"Content-Type: audio/wav\r\n\r\n").encode() + song + f"\r\n--{boundary}--\r\n".encode()
        chunks = (body[i : i + 4096] for i in range(0, len(body), 4096))  # no Content-Length: chunked
        response = client.post("/api/jobs", content=chunks,
                               headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
        assert response.status_code == 413
        assert "0.02 MB" in response.json()["detail"]
        assert len(client.get("/api/jobs").json()["jobs"]) == 1 and len(list(root.iterdir())) == 1


def test_a_full_queue_refuses_with_429_and_a_cancelled_job_makes_room(tmp_path):
    root = tmp_path / "root"
    with TestClient(create_app(AppSettings(model_preset="tiny", max_queue=1), root=root)) as client:
        long_job = upload(client, "long.wav", tone_wav_bytes(3.0), rounds="1000").json()
        refused = upload(client, "next.wav", tone_wav_bytes(0.5))
        assert refused.status_code == 429 and "queue is full" in refused.json()["detail"]
        wait_until(lambda: client.get(f"/api/jobs/{long_job['id']}").json()["done_units"] > 0, "the optimisation")
        assert client.post(f"/api/jobs/{long_job['id']}/cancel").status_code == 200
        job = finished(client, long_job["id"])
        assert job["state"] == "cancelled" and job["output_name"] is None
        assert not any(path.is_file() for path in (root / long_job["id"] / "output").iterdir())
        assert upload(client, "next.wav", tone_wav_bytes(0.5), rounds="1").status_code == 201


def test_a_queued_job_cancelled_never_runs(tmp_path):
    with TestClient(create_app(AppSettings(model_preset="tiny", max_queue=2), root=tmp_path / "root")) as client:
        first = upload(client, "first.wav", tone_wav_bytes(3.0), rounds="1000").json()
        second = upload(client, "second.wav", tone_wav_bytes(0.5), rounds="1").json()
        client.post(f"/api/jobs/{second['id']}/cancel")
        client.post(f"/api/jobs/{first['id']}/cancel")
        assert finished(client, second["id"])["state"] == "cancelled"
        assert client.get(f"/api/jobs/{second['id']}").json()["elapsed_s"] is None  # never started
        assert finished(client, first["id"])["state"] == "cancelled"


def test_only_the_apps_own_job_ids_are_accepted(protected):
    client, job, _root = protected
    for job_id in ["0" * 32, job["id"].upper(), job["id"][:-1], "..", "..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd"]:
        for route in ("", "/output", "/report.png", "/ab/original"):
            assert client.get(f"/api/jobs/{job_id}{route}").status_code == 404, (job_id, route)
    assert client.get(f"/api/jobs/{job['id']}/ab/..%2F..%2Foutput").status_code == 404


def test_deleting_a_job_removes_its_files_and_stopping_the_app_removes_the_rest(tmp_path):
    root = tmp_path / "root"
    with TestClient(create_app(TINY, root=root)) as client:
        kept = finished(client, upload(client, "kept.wav", b"not audio: fails at once").json()["id"])
        gone = finished(client, upload(client, "gone.wav", tone_wav_bytes(0.5), rounds="1").json()["id"])
        assert (kept["state"], gone["state"]) == ("failed", "done")
        assert {path.name for path in (root / gone["id"]).rglob("*")} >= {"gone.wav", "gone.protected.wav",
                                                                          "original.wav", "protected.wav"}
        assert client.delete(f"/api/jobs/{gone['id']}").status_code == 204
        assert client.get(f"/api/jobs/{gone['id']}").status_code == 404
        assert sorted(path.name for path in root.iterdir()) == [kept["id"]]
    assert not root.exists()


def test_a_bad_file_fails_its_job_with_a_plain_message_and_the_queue_goes_on(tmp_path):
    with TestClient(create_app(TINY, root=tmp_path / "root")) as client:
        bad = finished(client, upload(client, "notes.wav", b"these are my lyrics, not audio").json()["id"])
        assert bad["state"] == "failed" and "Traceback" not in bad["error"] and str(tmp_path) not in bad["error"]
        good = finished(client, upload(client, "song.wav", tone_wav_bytes(0.5), rounds="1").json()["id"])
        assert good["state"] == "done"


@pytest.mark.parametrize("form, words", [({"strength": "max"}, "strength"), ({"seed": "-1"}, "seed"),
                                         ({"preview_s": "soon"}, "not a number"), ({"mode": "whitebox"}, "checkpoint")])
def test_bad_settings_are_refused_before_queueing(tmp_path, form, words):
    root = tmp_path / "root"
    with TestClient(create_app(TINY, root=root)) as client:
        response = upload(client, "song.wav", tone_wav_bytes(0.5), **form)
        assert response.status_code == 400 and words in response.json()["detail"]
        assert list(root.iterdir()) == []


def test_the_page_and_its_files_come_from_the_app_itself(tmp_path):
    with TestClient(create_app(TINY, root=tmp_path / "root")) as client:
        page = client.get("/").text
        assert "drop-zone" in page and "file-input" in page
        for asset in ("/static/app.js", "/static/style.css"):
            assert client.get(asset).status_code == 200
        everything = page + client.get("/static/app.js").text + client.get("/static/style.css").text
        assert "http://" not in everything and "https://" not in everything  # nothing from the internet
        assert client.get("/static/../server.py").status_code == 404


def protect_through_app(client, path, **form):
    response = upload(client, path.name, path.read_bytes(), **form)
    assert response.status_code == 201, response.text
    job = finished(client, response.json()["id"])
    assert job["state"] == "done", job
    return job, client.get(f"/api/jobs/{job['id']}/output").content


def test_a_midi_file_is_protected_as_the_cli_does_with_no_ab_players(tmp_path):
    midi = Path(__file__).resolve().parents[2] / "examples" / "bwv1.6.mid"
    with TestClient(create_app(TINY, root=tmp_path / "root")) as client:
        job, content = protect_through_app(client, midi, rounds="1", seed="3")
    assert main(["protect", str(midi), "-o", f"{tmp_path}/", "--preset", "tiny", "--rounds", "1", "--seed", "3"]) == 0
    assert content == (tmp_path / "bwv1.6.protected.mid").read_bytes()
    assert not job["has_ab"] and job["inaudible"] is None
    assert job["verdict"].startswith("inaudible by our checks: not judged (a MIDI file")
    assert job["verdict"].endswith(MEASURED_PROTECTION["midi"])


def test_white_box_takes_the_uploaded_model_and_writes_the_clis_bytes(tmp_path):
    song = tmp_path / "song.wav"
    song.write_bytes(tone_wav_bytes(3.0))
    checkpoint = tmp_path / "mine.pt"
    assert main(["train", str(song), "-o", str(checkpoint), "--preset", "tiny", "--steps", "2"]) == 0
    with TestClient(create_app(TINY, root=tmp_path / "root")) as client:
        response = client.post("/api/jobs", data={"mode": "whitebox", "rounds": "1"},
                               files={"file": ("song.wav", song.read_bytes()), "model": ("mine.pt", checkpoint.read_bytes())})
        assert response.status_code == 201, response.text
        job = finished(client, response.json()["id"])
        assert job["state"] == "done" and job["settings"]["mode"] == "whitebox", job
        content = client.get(f"/api/jobs/{job['id']}/output").content
    (tmp_path / "cli").mkdir()
    assert main(["protect", str(song), "-o", f"{tmp_path}/cli/", "--mode", "whitebox", "--model", str(checkpoint),
                 "--preset", "tiny", "--rounds", "1"]) == 0
    assert content == (tmp_path / "cli" / "song.protected.wav").read_bytes()


def test_a_model_that_is_not_a_checkpoint_fails_its_job_in_plain_words(tmp_path):
    with TestClient(create_app(TINY, root=tmp_path / "root")) as client:
        response = client.post("/api/jobs", data={"mode": "whitebox", "rounds": "1"},
                               files={"file": ("song.wav", tone_wav_bytes(0.5)), "model": ("mine.pt", b"not a model")})
        job = finished(client, response.json()["id"])
    assert job["state"] == "failed" and job["error"].startswith("model.pt: not a readable model checkpoint")
