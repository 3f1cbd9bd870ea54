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

PHONE_WIDTH = 360  # CSS pixels: the narrowest of today's common phones
_MEASURE = """<!DOCTYPE html><html><head><meta charset=utf-8></head><body style="margin:0">
<iframe id=page src="{src}" style="width:{width}px;height:800px;border:0"></iframe>
<script>
document.getElementById("page").addEventListener("load", () => {{
  const page = document.getElementById("page").contentDocument, out = document.createElement("pre");
  out.id = "measured";
  out.textContent = JSON.stringify({{scrollWidth: page.documentElement.scrollWidth,
                                    clientWidth: page.documentElement.clientWidth,
                                    viewport: (page.querySelector("meta[name=viewport]") || {{}}).content || null}});
  document.body.appendChild(out);
}});
</script></body></html>"""


def phone_layout(page, folder) -> dict:
    """The page laid out in a frame a phone wide: its scroll and client widths and its viewport meta tag (a
    phone lays a page out at its own width only when that tag says so)."""
    import json
    import re
    import shutil as files

    folder.mkdir(parents=True, exist_ok=True)
    copy = folder / "page.html"
    files.copy(page, copy)
    measure = folder / "measure.html"
    measure.write_text(_MEASURE.format(src=copy.name, width=PHONE_WIDTH), encoding="utf-8")
    dom = chromium("--allow-file-access-from-files", "--virtual-time-budget=10000", "--dump-dom", measure.as_uri(),
                   profile=folder / "profile").stdout
    found = re.search(r'<pre id="measured">(.*?)</pre>', dom)
    assert found, f"the frame did not report its layout:\n{dom[-2000:]}"
    return json.loads(found.group(1).replace("&quot;", '"'))


def console_lines(page, profile) -> list[str]:
    """What the page prints to the browser console (Chromium logs console messages as ``CONSOLE`` lines)."""
    result = chromium("--enable-logging=stderr", "--v=0", "--dump-dom", page.as_uri(), profile=profile)
    return [line for line in result.stderr.splitlines() if ":CONSOLE" in line]
