"""Where a training run writes: never a mix of two runs.

A run writes into a staging folder beside its output folder (`.NAME.partial`),
and only a run that ends moves its files (config.cfg, model-best/, model-last/,
scores.json) into the output folder, each replacing the previous run's by a
rename. A run that fails or is interrupted leaves the output folder as it was
and removes its staging folder. A folder that already holds a run is refused
unless the caller asks to overwrite it.
"""

import os
import shutil
from pathlib import Path
from typing import Union

from .config import ConfigError

RUN_FILES = ("config.cfg", "model-best", "model-last", "scores.json")


def staging_path(path: Path) -> Path:
    """Where a run into `path` writes while it trains (model-best/ appears there first)."""
    return path.parent / f".{path.name}.partial"


class RunOutput:
    """The output folder of one training run and its staging folder."""

    def __init__(self, path: Union[str, Path], *, overwrite: bool = False) -> None:
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise ConfigError(f"--output {self.path}: is a file, expected a folder")
        held = [name for name in RUN_FILES if (self.path / name).exists()]
        if held and not overwrite:
            raise ConfigError(
                f"--output {self.path}: holds a training run already ({', '.join(held)}); "
                "pass --overwrite to replace it, or choose another folder"
            )
        self.staging = staging_path(self.path)
        if self.staging.exists():  # left by a run that was killed
            shutil.rmtree(self.staging)
        self.staging.mkdir(parents=True)

    def commit(self) -> None:
        """Move the finished run into the output folder, replacing the previous run's files."""
        self.path.mkdir(parents=True, exist_ok=True)
        for name in RUN_FILES:
            new, old = self.staging / name, self.path / name
            if not new.exists():
                continue
            if old.exists():
                retired = self.staging / f"{name}.previous"
                os.replace(old, retired)
            os.replace(new, old)
        shutil.rmtree(self.staging)

    def discard(self) -> None:
        """Remove what a failed run wrote; the output folder stays as it was."""
        shutil.rmtree(self.staging, ignore_errors=True)
