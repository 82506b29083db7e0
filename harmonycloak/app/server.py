"""The app's web server (FastAPI): the page, and a small JSON API the page polls.

    GET    /                          the page (static/index.html, app.js, style.css; nothing from the internet)
    GET    /api/options               the choices and defaults of the form, and the app's limits
    POST   /api/jobs                  upload one file (multipart: file, strength, mode, cloak, preview_s,
                                      seed, rounds; model in white-box mode) → the job, queued
    GET    /api/jobs                  every job and the queue's overall progress and time left
    GET    /api/jobs/{id}             one job
    POST   /api/jobs/{id}/cancel      cancel a queued or running job
    DELETE /api/jobs/{id}             forget a job and remove its files
    GET    /api/jobs/{id}/output      the protected file (…/report.png, …/report.json, …/ab/original, …/ab/protected)
    GET    /api/outputs.zip           every protected file with its report, as one zip

Files are only ever found through a job the queue made: no path from a request reaches the
disk. Errors answer JSON ``{"detail": message}``: 400 a bad name or setting, 404 no such job
or file, 409 not finished, 413 an upload over the limit, 429 a full queue.
"""

from __future__ import annotations

import math
import re
import shutil
import tempfile
import time
import zipfile
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.background import BackgroundTask

from harmonycloak import settings as defaults
from harmonycloak.app.app_settings import AppSettings
from harmonycloak.app.jobs import Job, JobQueue, make_root
from harmonycloak.app.protection import protect_job
from harmonycloak.app.uploads import (
    READABLE_SUFFIXES,
    QueueFullError,
    UploadRefusedError,
    UploadTooLargeError,
    limited_receive,
    path_inside,
    upload_name,
    upload_too_large_message,
)
from harmonycloak.errors import SettingsError
from harmonycloak.settings import ProtectionSettings

STATIC_FOLDER = Path(__file__).parent / "static"
FORM_FIELDS_BYTES = 64 * 1024  # what an upload may carry beyond its files: the settings and the multipart framing
JOB_ID = re.compile(r"[0-9a-f]{32}")
MODEL_FILE_NAME = "model.pt"  # a white-box model uploaded with its song, inside the job's folder


def create_app(app_settings: AppSettings = AppSettings(), root: Path | None = None) -> FastAPI:
    """The app; its job folders live in `root` (default: a new temporary folder), removed when it stops."""
    queue_holder: list[JobQueue] = []

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        queue_holder.append(JobQueue(root or make_root(), protect_job, app_settings.max_queue))
        try:
            yield
        finally:
            queue_holder.pop().close()

    app = FastAPI(title="harmonycloak", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/static", StaticFiles(directory=STATIC_FOLDER), name="static")

    def queue() -> JobQueue:
        return queue_holder[0]

    def job_or_404(job_id: str) -> Job:
        job = queue().get(job_id) if JOB_ID.fullmatch(job_id) else None
        if job is None:
            raise HTTPException(404, "no such job")
        return job

    def finished_file(job: Job, key: str, filename: str | None = None, media_type: str | None = None) -> FileResponse:
        if job.state != "done":
            raise HTTPException(409, f"{job.name} is {job.state}, not done")
        path = job.result.get(key)
        if path is None or not Path(path).is_file():
            raise HTTPException(404, f"{job.name} has no {key.replace('_', ' ')}")
        return FileResponse(path, filename=filename, media_type=media_type,
                            content_disposition_type="attachment" if filename else "inline")

    @app.exception_handler(QueueFullError)
    async def queue_full(_request: Request, error: QueueFullError) -> JSONResponse:
        return JSONResponse({"detail": error.message}, status_code=429)

    @app.exception_handler(UploadTooLargeError)
    async def too_large(_request: Request, error: UploadTooLargeError) -> JSONResponse:
        return JSONResponse({"detail": error.message}, status_code=413, headers={"Connection": "close"})

    @app.exception_handler(UploadRefusedError)
    async def refused(_request: Request, error: UploadRefusedError) -> JSONResponse:
        return JSONResponse({"detail": error.message}, status_code=400)

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC_FOLDER / "index.html", media_type="text/html")

    @app.get("/api/options")
    def options() -> dict:
        return {
            # cloak "" and rounds null: the file's kind and the objective choose (`ProtectionSettings.resolved`)
            "strengths": defaults.STRENGTHS, "modes": defaults.MODES, "cloaks": ("", *defaults.CLOAKS),
            "defaults": {"strength": ProtectionSettings.strength, "mode": ProtectionSettings.mode,
                         "cloak": "", "seed": ProtectionSettings.seed, "rounds": None},
            "suffixes": READABLE_SUFFIXES,
            "max_upload_mb": app_settings.max_upload_mb,
            "max_queue": app_settings.max_queue,
        }

    @app.post("/api/jobs", status_code=201)
    async def add_job(request: Request) -> dict:
        # while it streams in, the request as a whole (a little above the limit, for the form's fields);
        # once parsed, its files exactly
        limit_bytes = round(app_settings.max_upload_mb * 2**20) + FORM_FIELDS_BYTES
        stated = request.headers.get("content-length", "")
        if stated.isdigit() and int(stated) > limit_bytes:
            raise UploadTooLargeError(upload_too_large_message(app_settings.max_upload_mb))
        queue().check_room()
        limited = Request(request.scope, limited_receive(request.receive, limit_bytes, app_settings.max_upload_mb))
        async with limited.form(max_files=2, max_fields=20) as form:
            upload = form.get("file")
            if upload is None or isinstance(upload, str):
                raise UploadRefusedError("the request holds no file (a form field named 'file')")
            name = upload_name(upload.filename)
            model = form.get("model")
            model = None if isinstance(model, str) else model
            if upload.size + (model.size if model is not None else 0) > app_settings.max_upload_mb * 2**20:
                raise UploadTooLargeError(upload_too_large_message(app_settings.max_upload_mb))
            job_id, folder = queue().new_folder()
            try:
                _save(upload.file, path_inside(folder / "input", name))
                model_path = _save(model.file, folder / MODEL_FILE_NAME) if model is not None else None
                settings = _protection_settings(form, model_path, app_settings)
                job = queue().add(job_id, name, folder, settings)
            except BaseException:
                shutil.rmtree(folder, ignore_errors=True)
                raise
        return _job_json(job, time.monotonic())

    @app.get("/api/jobs")
    def list_jobs() -> dict:
        now_s = time.monotonic()
        return {"jobs": [_job_json(job, now_s) for job in queue().jobs()], "overall": queue().overall(now_s)}

    @app.get("/api/jobs/{job_id}")
    def get_job(job_id: str) -> dict:
        return _job_json(job_or_404(job_id), time.monotonic())

    @app.post("/api/jobs/{job_id}/cancel")
    def cancel_job(job_id: str) -> dict:
        job = job_or_404(job_id)
        queue().cancel(job)
        return _job_json(job, time.monotonic())

    @app.delete("/api/jobs/{job_id}", status_code=204)
    def delete_job(job_id: str) -> Response:
        queue().delete(job_or_404(job_id))
        return Response(status_code=204)

    @app.get("/api/jobs/{job_id}/output")
    def output(job_id: str) -> FileResponse:
        job = job_or_404(job_id)
        return finished_file(job, "output", filename=Path(job.result.get("output", "")).name)

    @app.get("/api/jobs/{job_id}/report.png")
    def picture(job_id: str) -> FileResponse:
        return finished_file(job_or_404(job_id), "picture", media_type="image/png")

    @app.get("/api/jobs/{job_id}/report.json")
    def report(job_id: str) -> FileResponse:
        return finished_file(job_or_404(job_id), "report", media_type="application/json")

    @app.get("/api/jobs/{job_id}/ab/{which}")
    def ab(job_id: str, which: str) -> FileResponse:
        if which not in ("original", "protected"):
            raise HTTPException(404, "the A/B players are 'original' and 'protected'")
        return finished_file(job_or_404(job_id), f"ab_{which}", media_type="audio/wav")

    @app.get("/api/outputs.zip")
    def outputs_zip() -> FileResponse:
        done = [job for job in queue().jobs() if job.state == "done"]
        if not done:
            raise HTTPException(404, "no protected file yet")
        handle, name = tempfile.mkstemp(suffix=".zip", dir=queue().root)
        archive_path = Path(name)
        with open(handle, "wb") as file, zipfile.ZipFile(file, "w", zipfile.ZIP_STORED) as archive:
            for arcname, path in _zip_members(done):
                archive.write(path, arcname)
        return FileResponse(archive_path, filename="harmonycloak-protected.zip",
                            background=BackgroundTask(archive_path.unlink, missing_ok=True))

    return app


def _save(source, destination: Path) -> Path:
    with open(destination, "xb") as target:
        shutil.copyfileobj(source, target, length=1 << 20)
    return destination


def _protection_settings(form, model_path: Path | None, app_settings: AppSettings) -> ProtectionSettings:
    """The job's settings from the form's fields; a missing field keeps `ProtectionSettings`' default."""

    def field(name: str, parse, default):
        text = form.get(name)
        if text is None or (isinstance(text, str) and not text.strip()):
            return default
        try:
            return parse(text.strip())
        except ValueError:
            raise UploadRefusedError(f"{name.replace('_', ' ')}: '{text}' is not a number") from None

    mode = field("mode", str, ProtectionSettings.mode)
    if mode == "whitebox" and model_path is None:
        raise UploadRefusedError("white-box mode needs the checkpoint of the model to protect against "
                                 "(harmonycloak train makes one)")
    try:
        return ProtectionSettings(
            mode=mode,
            model_checkpoint=model_path,
            strength=field("strength", str, ProtectionSettings.strength),
            cloak=field("cloak", str, ProtectionSettings.cloak),
            preview_s=field("preview_s", float, None),
            seed=field("seed", int, ProtectionSettings.seed),
            max_rounds=field("rounds", int, ProtectionSettings.max_rounds),
            model_preset=app_settings.model_preset,
            device=app_settings.device,
        )
    except SettingsError as error:
        raise UploadRefusedError(error.message) from None


def _zip_members(jobs: list[Job]) -> list[tuple[str, Path]]:
    """(name in the zip, file) of each job's output and report files; a name taken already gets " (2)"."""
    members, taken = [], set()
    for job in jobs:
        output = Path(job.result["output"])
        stem, suffix, number = output.stem, output.suffix, 1
        while f"{stem}{suffix}" in taken:
            number += 1
            stem = f"{output.stem} ({number})"
        taken.add(f"{stem}{suffix}")
        members.append((f"{stem}{suffix}", output))
        for key, ending in (("report", ".report.json"), ("picture", ".report.png")):
            if job.result.get(key) is not None and Path(job.result[key]).is_file():
                members.append((f"{stem}{ending}", Path(job.result[key])))
    return members


def _job_json(job: Job, now_s: float) -> dict:
    """What the page may know of a job: no folder of the server's."""
    result = job.result if job.state == "done" else {}
    return {
        "id": job.id,
        "name": job.name,
        "state": job.state,
        "phase": job.phase,
        "done_units": job.done_units,
        "total_units": job.total_units,
        "fraction_done": job.fraction_done(),
        "eta_s": job.eta_s(now_s),
        "elapsed_s": job.elapsed_s(now_s),
        "error": job.error,
        "warnings": job.warnings,
        "settings": {"strength": job.settings.strength, "mode": job.settings.mode, "cloak": job.settings.cloak,
                     "preview_s": job.settings.preview_s, "seed": job.settings.seed,
                     "rounds": job.settings.max_rounds},
        "output_name": Path(result["output"]).name if "output" in result else None,
        "has_picture": result.get("picture") is not None,
        "has_ab": "ab_original" in result,
        "ab_seconds": result.get("ab_seconds"),
        "ab_protected_gain_db": result.get("ab_protected_gain_db"),
        "verdict": result.get("verdict"),
        "inaudible": result.get("inaudible"),
        "snr_db": _finite_or_none(result.get("snr_db")),
    }


def _finite_or_none(value: float | None) -> float | None:
    """JSON has no infinity (identical files have an infinite SNR)."""
    return value if value is not None and math.isfinite(value) else None
