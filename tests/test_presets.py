"""``gen-eval train --preset``: a preset supplies the family, settings, length and batch; the command line wins."""

from __future__ import annotations

import pytest

from gen_eval.errors import UserError
from gen_eval.trainers import presets
from gen_eval.trainers.presets import Preset, get_preset
from helpers.cli import run_cli_here


def test_preset_settings_are_overridden_by_the_command_line():
    preset = Preset(name="x", family="dcgan", summary="s", source="test", settings={"lr_g": 1e-4, "betas": [0.5, 0.9],
                                                                                       "d_batch_norm": False})
    assert preset.overrides({"lr_g": "3e-4"}) == {"lr_g": "3e-4", "betas": "[0.5, 0.9]", "d_batch_norm": "false"}


def test_unknown_preset_names_the_known_ones():
    with pytest.raises(UserError, match="unknown preset 'nope'"):
        get_preset("nope")


def test_cli_refuses_a_preset_of_another_family(monkeypatch, tmp_path):
    monkeypatch.setitem(presets.PRESETS, "tiny-dcgan", Preset(name="tiny-dcgan", family="dcgan", summary="s",
                                                               source="test"))
    result = run_cli_here(*["train", "acgan", "--preset", "tiny-dcgan", "--data", str(tmp_path), "--out",
                      str(tmp_path / "run")])
    assert result.returncode == 2 and "trains dcgan, not acgan" in (result.stdout + result.stderr)


def test_cli_needs_a_family_or_a_preset(tmp_path):
    result = run_cli_here(*["train", "--data", str(tmp_path), "--out", str(tmp_path / "run")])
    assert result.returncode == 2 and "give a model FAMILY or a --preset" in (result.stdout + result.stderr)


def test_help_lists_every_preset():
    result = run_cli_here(*["train", "--help"])
    assert result.returncode == 0
    for name in presets.preset_names():
        assert name in (result.stdout + result.stderr)
