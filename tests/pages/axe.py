"""axe-core in the browser tests: every page state a journey visits has no violation.

``assert_axe_clean(page, "methods, after sign-up")`` runs axe-core (from npm, in
tests/pages/axe/node_modules; ``npm ci`` there, or `make test`, installs it) on the page
as it is, at its own width and again at a phone's (390 px), and fails with every
violation of any impact, each with the elements it concerns.

axe is put into the page with ``page.evaluate(source)``: Playwright runs that through the
DevTools protocol, which the page's Content-Security-Policy does not govern, so the
journeys keep running under the real CSP (no ``bypass_csp``, no inline ``<script>`` that
the policy would block). axe stays in the page until the next navigation.

``screenshot(page, "methods-en")`` writes ``<name>.png`` into the folder named by
``STEPUP_SCREENSHOTS`` (``STEPUP_SCREENSHOTS=docs/img`` remakes the README's pictures),
and does nothing when it is unset.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Page, ViewportSize

AXE_DIR = Path(__file__).resolve().parent / "axe"
AXE_JS = AXE_DIR / "node_modules" / "axe-core" / "axe.min.js"
PHONE: ViewportSize = {"width": 390, "height": 844}
DESKTOP: ViewportSize = {"width": 1280, "height": 900}
ROOT = Path(__file__).resolve().parents[2]

# All of axe's rules but the experimental ones: WCAG 2.x A and AA, and its best practices.
_RUN = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map(n => ({target: n.target.join(" "), html: n.html,
                              summary: n.failureSummary}))}));
}"""


@cache
def _axe_source() -> str:
    if not AXE_JS.exists():
        pytest.fail(f"axe-core is not installed: run `npm ci` in {AXE_DIR} "
                    "(make test does it)")
    return AXE_JS.read_text(encoding="utf-8")


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """axe's violations on the page as it is now."""
    if not page.evaluate("typeof window.axe === 'object'"):
        page.evaluate(_axe_source())
    violations: list[dict[str, Any]] = page.evaluate(_RUN)
    return violations


def _describe(width: int, violations: list[dict[str, Any]]) -> list[str]:
    lines = []
    for v in violations:
        lines.append(f"  [{width}px] {v['id']} ({v['impact']}): {v['help']}")
        for n in v["nodes"][:5]:
            lines.append(f"      {n['target']}: {n['html'][:160]}")
            lines.extend(f"        {s}" for s in (n["summary"] or "").splitlines())
        if len(v["nodes"]) > 5:
            lines.append(f"      … and {len(v['nodes']) - 5} more elements")
    return lines


def assert_axe_clean(page: Page, label: str, *, phone: bool = True) -> None:
    """No axe violation on the page now, at its width and (``phone``) at 390 px; a page
    in a phone-sized window is checked at a desktop's width (1280 px) too.

    The other width's check resizes the viewport for it and puts it back afterwards.
    """
    size = page.viewport_size
    report = _describe(size["width"] if size else 0, axe_violations(page))
    other = PHONE if size and size["width"] != PHONE["width"] else DESKTOP
    if phone and size:
        page.set_viewport_size(other)
        try:
            report += _describe(other["width"], axe_violations(page))
        finally:
            page.set_viewport_size(size)
    assert not report, f"axe: {label} ({page.url}):\n" + "\n".join(report)


def screenshot(page: Page, name: str, *, full_page: bool = False,
               centre: str | None = None) -> None:
    """``<name>.png`` in $STEPUP_SCREENSHOTS (relative to the repository), when it is set:
    the window from the page's top, around ``centre``, or the whole page (``full_page``)."""
    folder = os.environ.get("STEPUP_SCREENSHOTS")
    if not folder:
        return
    path = Path(folder)
    if not path.is_absolute():
        path = ROOT / path
    path.mkdir(parents=True, exist_ok=True)
    # The page from its top (a field with autofocus may have scrolled it), or with the
    # element ``centre`` (a CSS selector) in the middle of the window.
    if centre:
        page.locator(centre).evaluate("e => e.scrollIntoView({block: 'center'})")
    else:
        page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(path / f"{name}.png"), full_page=full_page, animations="disabled",
                    caret="hide")
