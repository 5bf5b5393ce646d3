"""events / alerts ask a running guard, else read ops.db; bad input is one sentence."""

from __future__ import annotations

import http.server
import json
import threading
from pathlib import Path

import pytest
from tests.cli.conftest import Invoke

from steadylink.clock import FakeClock
from steadylink.release.guard import Guard
from steadylink.settings import Settings
from steadylink.watch.alert_store import AlertStore
from steadylink.watch.alerts import Alert
from steadylink.watch.journal import Journal


def test_events_work_with_no_guard_and_filter_by_kind_and_release(
    cli: Invoke, data_dir: Path, clock: FakeClock
) -> None:
    assert "no events since" in cli("events").stderr
    journal = Journal.for_data_dir(data_dir, clock=clock)
    journal.append("deploy.started", "deploy of main", release="r2", body={"ref": "main"})
    journal.append("probe.failed", "probe redirect failed", severity="warning", release="r1")
    journal.close()
    clock.advance(60)
    shown = cli("events", "--since", "1h", "--kind", "probe", "--json")
    assert shown.exit_code == 0, shown.output
    assert [e["kind"] for e in json.loads(shown.stdout)] == ["probe.failed"]
    by_release = json.loads(cli("events", "--release", "r2", "--json").stdout)
    assert [e["body"] for e in by_release] == [{"ref": "main"}]
    assert "deploy of main" in cli("events").stdout
    assert json.loads(cli("events", "--since", "30s", "--json").stdout) == []


def test_alerts_read_ops_db(cli: Invoke, data_dir: Path, clock: FakeClock) -> None:
    assert "no alerts" in cli("alerts").stderr
    data_dir.mkdir(parents=True, exist_ok=True)
    store = AlertStore(data_dir / "ops.db")
    now = clock.now().timestamp()
    store.save(Alert("front_door_down-1", "front_door_down", "page", "firing", now, "front door failing"))
    store.close()
    [alert] = json.loads(cli("alerts", "--json").stdout)
    assert alert["dedup_key"] == "steadylink/front_door_down-1" and alert["state"] == "firing"


def test_bad_input_is_one_sentence_and_a_nonzero_exit(cli: Invoke) -> None:
    for args, words in (
        (["events", "--since", "yesterday"], "since must be a span"),
        (["events", "--kind", "Not A Kind"], "Event kind 'Not A Kind'"),
        (["silence", "front_door_down", "--for", "forever", "--reason", "x"], "for must be a span"),
        (["ack", "x"], "No guard runs"),
    ):
        done = cli(*args)
        assert done.exit_code == 2 or (args[0] == "ack" and done.exit_code == 1), (args, done.output)
        assert words in done.stderr and "Traceback" not in done.output


def test_up_refuses_a_malformed_channel_url_before_starting_anything(
    cli: Invoke, data_dir: Path, tmp_path: Path
) -> None:
    (tmp_path / "steadylink.toml").write_text(
        '[notify]\napprise_urls = ["json://ok.example/x", "::nope::"]\n'
    )
    done = cli("up", "--port", "20590", "--ops-port", "20591")
    assert done.exit_code == 2
    assert "notify.apprise_urls entry 2 is not a URL Apprise understands" in done.stderr
    assert not (data_dir / "run" / "haproxy.pid").exists()


def test_a_budget_spent_past_its_end_reads_as_spent_not_as_a_huge_negative_share(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from steadylink.cli.watch import print_watch_status

    block = {
        "objective": {"availability_percent": 99.9962, "budget_minutes_per_year": 20},
        "budget": {
            "time_based": [
                {"span": "this year", "left_minutes": 19.2, "allowed_minutes": 20.0, "left_percent": 96.0},
                {"span": "last 30 days", "left_minutes": -0.4, "allowed_minutes": 1.6, "left_percent": -25.0},
            ],
            "request_based": [
                {"span": "this year", "requests": 13895, "failures": 624, "allowed_failures": 0.6,
                 "left_percent": -112170.6},
            ],
        },
        "burn_rate": {"probes_5m": 0.0, "probes_1h": 0.0, "requests_1h": 0.0},
        "firing": [],
    }
    print_watch_status(block)
    shown = capsys.readouterr().out
    assert "error budget this year: 19.2 of 20.0 min left (96.0 %)" in shown
    assert "error budget last 30 days: spent, 0.4 min over its 1.6 min" in shown
    assert "624 of 13,895 requests failed (spent: 0.6 allowed, 1,040x that)" in shown
    assert "-112170" not in shown


class _Guard(http.server.BaseHTTPRequestHandler):
    """A running guard's ops API, as far as `events` and `alerts` ask it."""

    answers: dict[str, object] = {}

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        if self.headers.get("Authorization") != "Bearer operator-key" or path not in self.answers:
            self.send_error(401 if path in self.answers else 404)
            return
        body = json.dumps(self.answers[path]).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_alerts_and_events_ask_the_running_guard_first(
    cli: Invoke, data_dir: Path, clock: FakeClock
) -> None:
    """What the guard holds is current while ops.db refuses writes; ops.db says nothing yet."""
    now = clock.now().timestamp()
    firing = Alert("disk_full-1", "disk_full", "page", "firing", now, "the data folder's disk is 100.0 % full")
    waiting = {"id": 0, "at": clock.now().isoformat(), "kind": "alert.firing", "release": None,
               "severity": "error", "message": "disk_full firing", "body": {}}  # fmt: skip
    _Guard.answers = {"/ops/v1/alerts": {"alerts": [firing.to_json()], "silences": []},
                      "/ops/v1/events": [waiting]}  # fmt: skip
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Guard)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        Guard(Settings(data_dir=data_dir)).record_ops_port(server.server_address[1])
        (data_dir / "run" / "operator.key").write_text("operator-key\n")
        [alert] = json.loads(cli("alerts", "--json").stdout)
        assert (alert["rule"], alert["state"]) == ("disk_full", "firing")
        assert "disk_full" in cli("alerts").stdout
        [event] = json.loads(cli("events", "--json").stdout)
        assert event["kind"] == "alert.firing"
    finally:
        server.shutdown()
        server.server_close()
    # the guard gone (its port closed): ops.db is read, which has nothing yet
    assert "no alerts" in cli("alerts").stderr
    assert "no events since" in cli("events").stderr
