"""Text inside an SVG that stays inside it: widths estimated, long names shortened, labels kept apart.

An SVG has no layout engine, so widths are estimated from the character count; the factor is a
little above the average glyph width of common sans-serif fonts, so an estimate errs on the wide side.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

CHAR_WIDTH = 0.62  # of the font size, per character


def text_width(text: str, font_size: float) -> float:
    """Estimated width of `text` in user units."""
    return len(text) * font_size * CHAR_WIDTH


def fit_text(text: str, font_size: float, room: float) -> str:
    """`text`, or as much of it as fits in `room` ending in an ellipsis."""
    if text_width(text, font_size) <= room:
        return text
    keep = max(1, int(room / (font_size * CHAR_WIDTH)) - 1)
    return text[:keep].rstrip() + "…"


def titled(shown: str, full: str, element: str) -> str:
    """`element` (an SVG text), with the full text as a hover title when `shown` was shortened."""
    if shown == full:
        return element
    return f"<g><title>{escape(full)}</title>{element}</g>"


@dataclass(frozen=True)
class Box:
    """An axis-aligned rectangle in user units."""

    left: float
    top: float
    right: float
    bottom: float

    def overlaps(self, other: Box) -> bool:
        """Whether the two share any area."""
        return (
            self.left < other.right and other.left < self.right and self.top < other.bottom and other.top < self.bottom
        )

    def inside(self, other: Box) -> bool:
        """Whether this box lies wholly within `other`."""
        return (
            self.left >= other.left
            and self.right <= other.right
            and self.top >= other.top
            and self.bottom <= other.bottom
        )


@dataclass(frozen=True)
class Placed:
    """Where a label went: its anchor point, text-anchor, and the box it covers."""

    x: float
    y: float
    anchor: str
    box: Box


def label_box(x: float, y: float, anchor: str, width: float, font_size: float) -> Box:
    """The box a text of `width` covers with its baseline at y and its anchor at x."""
    left = x - width if anchor == "end" else x - width / 2 if anchor == "middle" else x
    return Box(left, y - font_size * 0.85, left + width, y + font_size * 0.25)


def place_label(
    x: float, y: float, width: float, font_size: float, taken: Sequence[Box], bounds: Box, gap: float = 10
) -> Placed:
    """A label beside the point (x, y): the first spot around it inside `bounds` that overlaps no `taken` box."""
    rise = font_size * 0.7
    spots = [
        (x + gap, y - rise, "start"),
        (x - gap, y - rise, "end"),
        (x + gap, y + rise + font_size * 0.6, "start"),
        (x - gap, y + rise + font_size * 0.6, "end"),
        (x + gap, y - rise - font_size * 1.3, "start"),
        (x - gap, y - rise - font_size * 1.3, "end"),
        (x + gap, y + rise + font_size * 1.9, "start"),
        (x - gap, y + rise + font_size * 1.9, "end"),
    ]
    options = [Placed(sx, sy, anchor, label_box(sx, sy, anchor, width, font_size)) for sx, sy, anchor in spots]
    inside = [p for p in options if p.box.inside(bounds)] or options
    return next((p for p in inside if not any(p.box.overlaps(t) for t in taken)), inside[0])
