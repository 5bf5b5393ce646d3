from steadylink.edge import ServerStats
from steadylink.release.canary import ServerFigures
from steadylink.release.observe import _Reader, _Synthetic, figures_of


def row(slot: int, lbtot: int, hrsp_5xx: int = 0, wredis: int = 0, status: str = "UP") -> ServerStats:
    zero = dict.fromkeys(
        ["scur", "stot", "econ", "eresp", "wretr", "hrsp_1xx", "hrsp_2xx", "hrsp_4xx", "hrsp_other",
         "lastchg", "qtime", "ttime", "chkfail", "hanafail"], 0)  # fmt: skip
    return ServerStats(slot=slot, status=status, check_status="L7OK", weight=10, lbtot=lbtot,
                       wredis=wredis, hrsp_3xx=lbtot, hrsp_5xx=hrsp_5xx, rtime=3, **zero)  # fmt: skip


def test_failures_include_requests_retried_away_and_synthetic_ones() -> None:
    figures = figures_of(row(1, 100, hrsp_5xx=2, wredis=3), _Synthetic(requests=10, errors=4))
    assert figures == ServerFigures(requests=110, errors_5xx=9, latency_ms=3.0, is_down=False)
    assert figures_of(row(1, 0, status="MAINT")).latency_ms is None


def test_a_slot_missing_from_one_answer_keeps_its_counters_and_reads_down() -> None:
    reader = _Reader()
    assert reader.read({1: row(1, 50, hrsp_5xx=1)}, 1).requests == 50
    missing = reader.read({}, 1)
    assert (missing.requests, missing.errors_5xx, missing.is_down) == (50, 1, True)
    assert reader.read({}, 7) == ServerFigures(0, 0, None, is_down=True)


def test_the_bake_countdown_says_the_time_left_and_the_figures_so_far() -> None:
    from steadylink.release.bake import BakeFigures
    from steadylink.release.observe import describe_bake

    figures = BakeFigures(
        seconds=12.4, requests=340, errors=1, baseline_ratio=0.0, threshold=0.01, latency_ms=3.0
    )
    assert describe_bake(figures, 30.0) == (
        "bake: 18 s left; 340 requests, 1 errors (0.29%, limit 1.00%), latency 3 ms"
    )


def test_synthetic_traffic_asks_the_home_page_and_link_pages_among_redirects() -> None:
    from steadylink.release.observe import SYNTHETIC_BURST, synthetic_paths

    codes = [f"c{i}" for i in range(50)]
    paths = synthetic_paths(codes)
    assert {f"/{c}" for c in codes} <= set(paths)
    pages = [p for p in paths if p == "/" or p.startswith("/s/")]
    assert set(pages) == {"/", "/s/c0", "/s/c1", "/s/c2"}
    # within every burst at least one page is asked, wherever the burst starts
    for start in range(len(paths)):
        burst = [paths[(start + i) % len(paths)] for i in range(SYNTHETIC_BURST)]
        assert any(p == "/" or p.startswith("/s/") for p in burst), burst
    assert synthetic_paths([]) == ["/healthz", "/"]  # an empty store: health and the home page
