"""QR codes: valid inline SVG that encodes the short URL and obeys the CSP."""

from __future__ import annotations

import segno

from steadylink.web.qr import qr_svg


def test_qr_is_inline_svg_without_styles_or_scripts() -> None:
    svg = str(qr_svg("https://sl.example/abc1234"))
    assert svg.startswith("<svg ") and svg.endswith("</svg>")
    assert "style=" not in svg and "<script" not in svg
    assert 'class="qr"' in svg and "viewBox=" in svg
    assert "width=" not in svg.split(">", 1)[0]  # sized by the stylesheet


def test_qr_title_is_escaped() -> None:
    svg = str(qr_svg("https://sl.example/x", title='<img src=x onerror="1">'))
    assert "<img" not in svg
    assert "&lt;img" in svg


def test_qr_encodes_exactly_the_short_url() -> None:
    text = "https://sl.example/spring-sale"
    expected = segno.make(text, error="m", micro=False)
    size = expected.symbol_size(scale=4, border=2)[0]
    svg = str(qr_svg(text))
    assert f'viewBox="0 0 {size} {size}"' in svg
    path = expected.svg_inline(scale=4, border=2, omitsize=True).split(' d="', 1)[1]
    assert path.split('"', 1)[0] in svg  # the same modules as segno's own symbol
    assert expected.version <= 4  # a short URL stays a small, easily scanned symbol
    assert str(qr_svg(text + "x")) != svg
