"""Settings and readers shared by the tests that train tiny models."""

from __future__ import annotations

import csv

# 16x16 (resized from the 64x64 shapes) and widths of a few channels keep every step in milliseconds.
TINY_GAN = {"data.resize": "true", "image_size": "16", "ngf": "4", "ndf": "4", "latent_dim": "8",
            "cond_embed": "8", "g_start_size": "4", "g_res_blocks": "1"}


def read_log(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))
