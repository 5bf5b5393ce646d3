"""QR codes for short links, drawn server-side as inline SVG.

The SVG carries no ``style`` attribute and no script, so it renders under the
pages' strict CSP; its size comes from the stylesheet (``viewBox`` only).
"""

from __future__ import annotations

import segno
from markupsafe import Markup

DARK = "#0f172a"
LIGHT = "#ffffff"


def qr_svg(text: str, *, title: str = "QR code") -> Markup:
    """An inline ``<svg>`` QR code for ``text`` (medium error correction)."""
    code = segno.make(text, error="m", micro=False)
    svg: str = code.svg_inline(
        scale=4,
        border=2,
        dark=DARK,
        light=LIGHT,
        omitsize=True,
        title=title,
        svgclass="qr",
        lineclass="qr-line",
    )
    # segno escapes the title it writes; the rest is numbers and fixed markup.
    return Markup(svg)
