"""Training logs: CSV of losses, loss-curve PNG, image grids, latent scatter plots.

Every file is written atomically (gen_eval.fileio) and, inside a run folder the loop owns, replaced
as training goes on. Matplotlib is driven through ``Figure`` objects (no pyplot global state).
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from gen_eval.fileio import atomic_path, atomic_write_text


def read_log_rows(path: Path) -> list[dict[str, float]]:
    """A log.csv as rows of numbers (empty cells left out); no rows when it is missing or unreadable."""
    try:
        with Path(path).open(newline="") as handle:
            return [{k: float(v) for k, v in row.items() if k is not None and v not in (None, "")}
                    for row in csv.DictReader(handle)]
    except (OSError, ValueError, csv.Error):
        return []


class CsvLog:
    """Rows of numbers keyed by column name, rewritten atomically on :meth:`flush`.

    Columns are the union of the keys seen, in first-seen order. On resume, :meth:`resume` reloads an
    existing file and drops rows past the checkpoint's step, so the log matches the weights.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.rows: list[dict[str, float]] = []
        self.columns: list[str] = []

    def append(self, row: dict[str, float]) -> None:
        for key in row:
            if key not in self.columns:
                self.columns.append(key)
        self.rows.append(dict(row))

    def resume(self, max_step: int) -> None:
        """Load the existing file (if readable), keeping rows with ``step <= max_step``."""
        self.rows, self.columns = [], []
        for values in read_log_rows(self.path):
            if values.get("step", math.inf) <= max_step:
                self.append(values)

    def flush(self) -> None:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=self.columns, lineterminator="\n")
        writer.writeheader()
        for row in self.rows:
            writer.writerow({k: _format_number(v) for k, v in row.items()})
        atomic_write_text(self.path, buffer.getvalue(), force=True)


def _format_number(value: float) -> str:
    if float(value).is_integer() and abs(value) < 2**53:
        return str(int(value))
    return f"{value:.6g}"


LOSS_PANELS_PER_ROW = 3


def loss_figure(rows: Sequence[dict[str, float]], title: str = "", skip: Sequence[str] = ("step", "epoch", "time")):
    """A matplotlib Figure with one panel per logged quantity against the step, each on its own y axis
    (a VAE's KL and MSE differ by orders of magnitude); None when nothing is logged."""
    keys = [k for k in rows[0] if k not in skip] if rows else []
    for row in rows[1:]:
        keys += [k for k in row if k not in skip and k not in keys]
    if not keys:
        return None
    from matplotlib.figure import Figure

    cols = min(LOSS_PANELS_PER_ROW, len(keys))
    rows_of_panels = math.ceil(len(keys) / cols)
    fig = Figure(figsize=(3.6 * cols, 2.6 * rows_of_panels + 0.4), dpi=100)
    axes = fig.subplots(rows_of_panels, cols, sharex=True, squeeze=False).ravel()
    for ax, key in zip(axes, keys):
        points = [(row["step"], row[key]) for row in rows if key in row and math.isfinite(row[key])]
        if points:
            steps, values = zip(*points)
            ax.plot(steps, values, linewidth=1)
        ax.set_title(key, fontsize=9)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=7)
    for ax in axes[len(keys):]:
        fig.delaxes(ax)
    for ax in axes[len(keys) - cols:len(keys)]:
        ax.set_xlabel("step", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def save_loss_curve(rows: Sequence[dict[str, float]], path: str | os.PathLike, title: str = "",
                    skip: Sequence[str] = ("step", "epoch", "time")) -> Path | None:
    """:func:`loss_figure` as a PNG; None when there is nothing to plot."""
    fig = loss_figure(rows, title, skip)
    if fig is None:
        return None
    with atomic_path(path, force=True) as tmp:
        fig.savefig(tmp, format="png")
    return Path(path)


def to_unit_range(images: torch.Tensor, value_range: tuple[float, float]) -> torch.Tensor:
    """Images in ``value_range`` -> [0, 1], clamped (what torchvision's save_image expects)."""
    low, high = value_range
    return ((images.detach().float().cpu() - low) / (high - low)).clamp_(0, 1)


def save_grid(images: torch.Tensor, path: str | os.PathLike, value_range: tuple[float, float],
              nrow: int | None = None) -> Path:
    """A grid PNG of images (NCHW in ``value_range``) via torchvision's make_grid/save_image."""
    from torchvision.utils import save_image

    nrow = nrow or max(1, int(math.ceil(math.sqrt(images.shape[0]))))
    with atomic_path(path, force=True) as tmp:
        save_image(to_unit_range(images, value_range), tmp, nrow=nrow, padding=2, format="png")
    return Path(path)


def save_reconstruction_grid(originals: torch.Tensor, reconstructions: torch.Tensor, path: str | os.PathLike,
                             value_range: tuple[float, float], per_row: int = 8) -> Path:
    """Rows alternate: ``per_row`` originals, then their reconstructions below them."""
    n = min(originals.shape[0], reconstructions.shape[0])
    per_row = min(per_row, n)
    rows = []
    for start in range(0, n - n % per_row, per_row):
        rows += [originals[start:start + per_row].cpu(), reconstructions[start:start + per_row].cpu()]
    return save_grid(torch.cat(rows), path, value_range, nrow=per_row)


LATENT_PROJECTIONS = ("pca", "tsne")


def project_2d(latents: np.ndarray, method: str = "pca", seed: int = 0) -> tuple[np.ndarray, str]:
    """2-D coordinates of latent vectors: as they are when 2-D, else the first two principal components
    (``pca``) or scikit-learn's t-SNE (``tsne``; PCA-initialised, seeded)."""
    latents = np.asarray(latents, dtype=np.float64).reshape(len(latents), -1)
    if latents.shape[1] == 1:
        return np.concatenate([latents, np.zeros_like(latents)], axis=1), "z"
    if latents.shape[1] == 2:
        return latents, "z"
    if method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = min(30.0, max(1.0, (len(latents) - 1) / 3))    # must stay below the number of points
        tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed)
        return tsne.fit_transform(latents), "t-SNE "
    if method != "pca":
        raise ValueError(f"unknown projection {method!r}; use one of {', '.join(LATENT_PROJECTIONS)}")
    centred = latents - latents.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return centred @ vt[:2].T, "PC"


def save_latent_plot(latents: np.ndarray | torch.Tensor, colours: np.ndarray | None, path: str | os.PathLike,
                     colour_name: str = "", title: str = "", method: str = "pca") -> Path:
    """Scatter of latent means in 2-D (``method`` pca or tsne when D > 2), coloured by an attribute."""
    from matplotlib.figure import Figure

    if isinstance(latents, torch.Tensor):
        latents = latents.detach().float().cpu().numpy()
    points, axis = project_2d(latents, method)
    fig = Figure(figsize=(5.5, 5), dpi=100)
    ax = fig.add_subplot()
    if colours is None:
        ax.scatter(points[:, 0], points[:, 1], s=6)
    else:
        scatter = ax.scatter(points[:, 0], points[:, 1], s=6, c=np.asarray(colours, dtype=np.float64), cmap="viridis")
        bar = fig.colorbar(scatter, ax=ax)
        bar.set_label(colour_name)
    ax.set_xlabel(f"{axis}1")
    ax.set_ylabel(f"{axis}2")
    ax.set_title(title)
    fig.tight_layout()
    with atomic_path(path, force=True) as tmp:
        fig.savefig(tmp, format="png")
    return Path(path)
