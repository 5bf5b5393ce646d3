from steadylink.watch.traffic import FrontCounters, counted_between, parse_front_counters

STAT = """# pxname,svname,qcur,req_tot,hrsp_5xx,other
web,FRONTEND,0,1200,7,x
app,BACKEND,0,1100,3,x
"""


def test_the_frontend_row_is_what_users_got() -> None:
    assert parse_front_counters(STAT) == FrontCounters(1200, 7)
    assert parse_front_counters("# pxname,svname\n") is None


def test_counts_between_two_reads_and_a_restarted_haproxy_counts_from_zero() -> None:
    assert counted_between(FrontCounters(100, 1), FrontCounters(150, 4)) == (50, 3)
    assert counted_between(FrontCounters(100, 1), FrontCounters(20, 2)) == (20, 2)
    assert counted_between(None, FrontCounters(20, 2)) == (20, 2)
