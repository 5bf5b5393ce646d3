"""What a rejected deploy tells the operator from its failed step's output."""

from steadylink.release.deploy import failure_summary


def test_the_failing_tests_are_named_first_then_the_tail() -> None:
    output = "\n".join(
        [f"line {i}" for i in range(40)]
        + ["FAILED tests/web/test_redirect.py::test_redirects_keep_the_query - AssertionError: 500"]
        + ["ERROR tests/links/test_store.py::test_open - OSError"]
        + ["2 failed, 310 passed in 12.3s"]
    )
    summary = failure_summary(output, tail=4)
    assert summary[:2] == [
        "FAILED tests/web/test_redirect.py::test_redirects_keep_the_query - AssertionError: 500",
        "ERROR tests/links/test_store.py::test_open - OSError",
    ]
    assert summary[2:] == ["line 37", "line 38", "line 39", "2 failed, 310 passed in 12.3s"]


def test_an_output_without_tests_gives_its_last_lines() -> None:
    assert failure_summary("a\nb\nc\n", tail=2) == ["b", "c"]
    assert failure_summary("") == []


def test_pytest_s_warnings_summary_is_left_out() -> None:
    output = (
        "F\n=== FAILURES ===\nE       assert 500 == 302\ntests_bad.py:3: AssertionError\n"
        "=== warnings summary ===\nsite-packages/_pytest/config/__init__.py:1636\n"
        "  PytestConfigWarning: Unknown config option: timeout\n\n"
        "-- Docs: https://docs.pytest.org/en/stable/how-to/capture-warnings.html\n"
        "=== short test summary info ===\nFAILED tests_bad.py::test_x - AssertionError\n1 failed\n"
    )
    summary = failure_summary(output)
    assert summary[0] == "FAILED tests_bad.py::test_x - AssertionError"
    assert "E       assert 500 == 302" in summary and "=== short test summary info ===" in summary
    assert not any("Warning" in line or "Docs" in line for line in summary)
