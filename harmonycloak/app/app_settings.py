"""The app's limits and the protection settings no page offers, with their defaults (once, here)."""

from __future__ import annotations

from dataclasses import dataclass

from harmonycloak.errors import SettingsError
from harmonycloak.safeguards import check_count
from harmonycloak.settings import ProtectionSettings


@dataclass(frozen=True)
class AppSettings:
    max_upload_mb: float = 1024.0  # one upload (a song, with its model in white-box mode); an hour of CD-quality WAV is ~600 MB
    max_queue: int = 20  # files waiting or running at once
    model_preset: str = ProtectionSettings.model_preset  # surrogate sizes ("tiny": the tests' seconds-fast models)
    device: str = ProtectionSettings.device  # "auto", "cpu" or "cuda", as `protect --device`

    def __post_init__(self) -> None:
        if not self.max_upload_mb > 0:  # NaN fails too
            raise SettingsError(f"the upload limit must be above 0 MB, not {self.max_upload_mb}")
        check_count("the queue length (--max-queue)", self.max_queue)
        ProtectionSettings(model_preset=self.model_preset, device=self.device)  # checks both
