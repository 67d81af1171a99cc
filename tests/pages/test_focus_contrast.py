"""The focus ring is seen on every surface of the portal: WCAG 2.2's focus appearance
asks for at least 3:1 between the ring and what is around it.

The ring (``--focus``, drawn 2 px outside the control) lies over the page's surfaces:
every light background portal.css paints (page, cards, alerts, badges, code boxes).
The dark fills (a primary button, a switch's track) are inside the controls, never
under the ring. axe does not check focus styles, so this test reads the stylesheet.
"""

from __future__ import annotations

import re
from pathlib import Path

CSS = Path(__file__).resolve().parents[2] / "src" / "stepup" / "web" / "static" / "portal.css"


def _hex(value: str) -> tuple[float, float, float]:
    h = value.lstrip("#")
    if len(h) == 3:
        h = "".join(c * 2 for c in h)
    return int(h[0:2], 16) / 255, int(h[2:4], 16) / 255, int(h[4:6], 16) / 255


def luminance(colour: str) -> float:
    def linear(c: float) -> float:
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(c) for c in _hex(colour))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def _variables(css: str) -> dict[str, str]:
    root = re.search(r":root\s*\{(.*?)\}", css, re.S)
    assert root, "no :root block in portal.css"
    return dict(re.findall(r"(--[\w-]+)\s*:\s*(#[0-9a-fA-F]{3,6})\s*;", root.group(1)))


def surfaces(css: str) -> set[str]:
    """Every light background colour the stylesheet paints, variables resolved."""
    variables = _variables(css)
    found = set()
    for value in re.findall(r"background(?:-color)?\s*:\s*([^;}]+)", css):
        value = value.strip()
        var = re.fullmatch(r"var\((--[\w-]+)\)", value)
        colour = variables.get(var.group(1)) if var else value
        if colour and re.fullmatch(r"#[0-9a-fA-F]{3,6}", colour):
            found.add(colour.lower())
    return {c for c in found if luminance(c) > 0.5}


def test_the_contrast_formula() -> None:
    assert round(contrast("#000", "#fff"), 1) == 21.0
    assert round(contrast("#fb8c00", "#ffffff"), 2) == 2.37  # the old ring: too faint


def test_focus_ring_is_at_least_3_to_1_on_every_surface() -> None:
    css = CSS.read_text(encoding="utf-8")
    focus = _variables(css)["--focus"]
    found = surfaces(css)
    # The page, the cards and the alerts are among them (the parser sees them).
    assert {"#ffffff", "#f6f8fa", "#fff4d6", "#fde7e9", "#e8f0fe"} <= {
        "#ffffff" if c == "#fff" else c for c in found}
    weak = {c: round(contrast(focus, c), 2) for c in found if contrast(focus, c) < 3}
    assert not weak, f"--focus {focus} is under 3:1 on {weak}"


def test_every_focusable_element_shows_the_ring() -> None:
    css = CSS.read_text(encoding="utf-8")
    rule = re.search(r"([^{}]*:focus-visible[^{}]*)\{([^}]*)\}", css)
    assert rule, "no :focus-visible rule"
    selectors, body = rule.group(1), rule.group(2)
    for element in ("a", "button", "input", "select", "textarea", "summary", ".switch"):
        assert f"{element}:focus-visible" in selectors, element
    width = re.search(r"outline:\s*(\d+)px\s+solid\s+var\(--focus\)", body)
    assert width and int(width.group(1)) >= 2, body
    # Nothing takes it away again (main is focused only by the skip link, on purpose).
    removed = re.findall(r"([^{}]*):focus(?:-visible)?\s*\{[^}]*outline:\s*(?:none|0)", css)
    assert [s.strip() for s in removed] == ["main"], removed
