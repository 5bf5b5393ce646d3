"""events / alerts read ops.db without a guard; bad input is one sentence."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.conftest import Invoke

from steadylink.clock import FakeClock
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
