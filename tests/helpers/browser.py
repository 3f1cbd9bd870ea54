"""Headless Chromium (Debian's package) for the tests that open an HTML report in a real browser."""

from __future__ import annotations

import shutil
import subprocess

CHROMIUM = next((shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome") if shutil.which(name)),
                None)
NO_CHROMIUM = "no Chromium to render the HTML report in (Debian: apt-get install chromium)"


def chromium(*args, profile) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           f"--user-data-dir={profile}", *map(str, args)],
                          capture_output=True, text=True, timeout=180)
