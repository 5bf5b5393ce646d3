"""User-agent families and the bot flag."""

from __future__ import annotations

import pytest

from steadylink.links.agents import classify_agent

CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)


@pytest.mark.parametrize(
    ("agent", "expected"),
    [
        (CHROME, ("Chrome", False)),
        (CHROME + " Edg/126.0.2592.87", ("Edge", False)),
        (CHROME + " OPR/111.0.0.0", ("Opera", False)),
        ("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0", ("Firefox", False)),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
            ("Safari", False),
        ),
        ("curl/8.5.0", ("curl", False)),
        ("Wget/1.21.4", ("wget", False)),
        ("python-requests/2.32.3", ("python", False)),
        ("python-httpx/0.28.1", ("python", False)),
        ("Go-http-client/1.1", ("Go", False)),
        ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", ("bot", True)),
        ("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", ("bot", True)),
        ("Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)", ("bot", True)),
        ("facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)", ("bot", True)),
        ("Twitterbot/1.0", ("bot", True)),
        ("WhatsApp/2.23.20.0", ("bot", True)),
        ("SomethingElse/1.0", ("other", False)),
        ("", ("other", False)),
        (None, ("other", False)),
    ],
)
def test_classify_agent(agent: str | None, expected: tuple[str, bool]) -> None:
    assert classify_agent(agent) == expected
    assert classify_agent(agent) == expected  # memoised answer is the same
