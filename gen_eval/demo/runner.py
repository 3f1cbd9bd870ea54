"""Steps that run once: a marker per finished step, skipped on rerun when settings and files match."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from gen_eval.demo.recipe import SETTINGS_FILE, STEPS, Paths, Recipe
from gen_eval.errors import UserError, param, render
from gen_eval.fileio import atomic_write_json

log = logging.getLogger("gen_eval.demo")


@dataclass
class StepRecord:
    """One step's outcome, kept in its marker so a rerun can report it without redoing it."""

    step: str
    fingerprint: str
    seconds: float
    results: dict[str, Any] = field(default_factory=dict)
    skipped: bool = False
    load_average: list[float] = field(default_factory=list)   # 1, 5, 15-minute load when the step ended


def _fingerprint(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


class StepRunner:
    """Runs the steps in order, skipping the ones already done (marker + artefacts) unless ``force``."""

    def __init__(self, paths: Paths, recipe: Recipe, seed: int, force: bool) -> None:
        self.paths, self.recipe, self.seed, self.force = paths, recipe, seed, force
        self.records: dict[str, StepRecord] = {}
        self._chain = _fingerprint({"seed": seed})
        self._redoing = False   # once a step is redone, every later step is redone too

    def run(self, step: str, title: str, action: Callable[[bool], dict[str, Any]]) -> StepRecord:
        """Do ``action(may_resume)`` (which returns the step's results) unless the step is done already.

        A step that runs may replace its own earlier files in the demo folder: the folder is this
        demo's (see :func:`claim_folder`), and a missing or stale marker means they are incomplete or stale.
        ``may_resume`` is True when the step was interrupted (no marker) and nothing before it changed,
        so a training run may continue from its last checkpoint instead of starting over.
        """
        number = f"[{STEPS.index(step) + 1}/{len(STEPS)}]"
        self._chain = _fingerprint([self._chain, step, self.recipe.step_settings(step)])
        done = self._done(step, self._chain)
        if done is not None:
            done.skipped = True
            self.records[step] = done
            log.info(f"{number} {title}: done already ({done.seconds:.0f} s earlier); {render(param('force', True))} redoes it")
            return done
        log.info(f"{number} {title}")
        may_resume = not (self.force or self._redoing or self.paths.marker(step).exists())
        self._redoing = True
        self.paths.marker(step).unlink(missing_ok=True)
        started = time.perf_counter()
        results = action(may_resume)
        record = StepRecord(step, self._chain, round(time.perf_counter() - started, 1), results,
                            load_average=list(machine_load()))
        atomic_write_json(self.paths.marker(step), asdict(record), force=True)
        self.records[step] = record
        log.info(f"{number} {title}: {record.seconds:.0f} s")
        return record

    def _done(self, step: str, fingerprint: str) -> StepRecord | None:
        if self.force or self._redoing:
            return None
        marker = self.paths.marker(step)
        try:
            data = json.loads(marker.read_text())
            record = StepRecord(**data)
        except (OSError, ValueError, TypeError):
            return None
        if record.fingerprint != fingerprint or not all(p.exists() for p in self.paths.artefacts(step)):
            return None
        return record


def claim_folder(paths: Paths, recipe: Recipe, seed: int, force: bool) -> None:
    """Make sure ``paths.root`` is this demo's folder (or may become it) and record the settings."""
    root = paths.root
    if root.exists() and not root.is_dir():
        raise UserError(f"{root} is a file; give a folder for the demo with {param('out')}")
    settings = {"recipe": recipe.name, "seed": seed}
    settings_file = paths.state / SETTINGS_FILE
    if settings_file.is_file():
        try:
            previous = json.loads(settings_file.read_text())
        except (OSError, ValueError):
            previous = None
        if previous != settings and not force:
            what = (f"recipe {previous.get('recipe')!r}, seed {previous.get('seed')}"
                    if isinstance(previous, dict) else "unreadable settings")
            raise UserError(f"{root} holds a demo with other settings ({what}); pass {param('force', True)} to redo it with "
                            f"recipe {recipe.name!r}, seed {seed}, or choose another {param('out')}")
    elif root.is_dir() and any(root.iterdir()) and not force:
        raise UserError(f"{root} is not empty and holds no demo; choose a new or empty folder with {param('out')}, "
                        f"or pass {param('force', True)} to write the demo's files into it")
    atomic_write_json(settings_file, settings, force=True)


def machine_load() -> tuple[float, ...]:
    try:
        return tuple(round(v, 2) for v in os.getloadavg())
    except OSError:
        return ()
