"""axe-core in the real Chromium: the npm package, installed once into .cache/ by npm.

    violations = axe_violations(page, axe_script)  # [] when the page passes

The version is pinned; npm checks the package's integrity against the registry.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

AXE_VERSION = "4.14.1"
ROOT = Path(__file__).resolve().parent.parent.parent
PREFIX = ROOT / ".cache" / "npm" / f"axe-core-{AXE_VERSION}"
SCRIPT = PREFIX / "node_modules" / "axe-core" / "axe.min.js"

# WCAG 2.1 A and AA, plus axe's best practices (landmarks, one h1, heading order...).
RUN = """async () => {
  const result = await axe.run(document, {
    runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]},
    resultTypes: ["violations"],
  });
  return result.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 5).map(
      n => n.target.join(" ") + " :: " + n.failureSummary.replace(/\\s+/g, " ")),
  }));
}"""


def axe_install() -> Path:
    """axe.min.js of the pinned axe-core, installed with npm on first use."""
    if SCRIPT.exists():
        return SCRIPT
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("npm is needed to install axe-core for the accessibility test")
    PREFIX.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            npm,
            "install",
            "--prefix",
            str(PREFIX),
            f"axe-core@{AXE_VERSION}",
            "--no-save",
            "--no-package-lock",
            "--ignore-scripts",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
        ],
        check=True,
        timeout=300,
        capture_output=True,
    )
    if not SCRIPT.exists():
        pytest.fail(f"npm installed axe-core@{AXE_VERSION} but {SCRIPT} is missing")
    return SCRIPT


def axe_violations(page, script: Path) -> list[dict]:
    """axe's violations on the page as it is now (injects axe once per document)."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        # Evaluated through the DevTools protocol: the pages' Content-Security-Policy allows
        # no inline <script>, which add_script_tag would insert.
        page.evaluate(script.read_text() + "\n;0")
    return page.evaluate(RUN)
