"""User-agent family and bot flag, from a small table of precompiled patterns.

Decisions:

- *Bot* means something that fetches without a person reading the page
  behind it at that moment: search crawlers (Googlebot, bingbot, ...), link
  preview fetchers of chat and social apps (Slackbot, facebookexternalhit,
  Twitterbot, Discordbot, WhatsApp, TelegramBot, LinkedInBot, ...), monitors,
  headless browsers, and anything calling itself bot/crawler/spider.
- Command-line and library clients (curl, wget, python, Go) are *not* bots:
  they are often a person or a script acting for one, and counting them as
  bots would hide real API use. They get their own families instead.
- Families: Chrome, Firefox, Safari, Edge, Opera, curl, wget, python, Go,
  bot, other. Order matters: Edge and Opera say "Chrome" too, Chrome says
  "Safari".

Results are memoised per user-agent string (bounded), since a few hundred
distinct strings make up almost all traffic.
"""

from __future__ import annotations

import re

_BOT = re.compile(
    r"bot\b|bot/|crawl|spider|slurp|preview|facebookexternalhit|facebookcatalog|"
    r"whatsapp|embedly|quora link|vkshare|pinterest|headless|lighthouse|"
    r"pingdom|uptime|monitor|feedfetcher|mediapartners",
    re.IGNORECASE,
)

_FAMILIES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern, re.IGNORECASE))
    for name, pattern in (
        ("curl", r"^curl/"),
        ("wget", r"^wget/"),
        ("python", r"python|aiohttp|httpx"),
        ("Go", r"^go-http-client/"),
        ("Edge", r"\bedg(e|a|ios)?/"),
        ("Opera", r"\bopr/|\bopera\b"),
        ("Firefox", r"\bfirefox/|\bfxios/"),
        ("Chrome", r"\bchrome/|\bcrios/|\bchromium/"),
        ("Safari", r"\bsafari/|applewebkit/"),
    )
)

_MEMO_LIMIT = 10_000
_memo: dict[str, tuple[str, bool]] = {}


def classify_agent(user_agent: str | None) -> tuple[str, bool]:
    """``(family, is_bot)`` for a User-Agent header; ``("other", False)`` when empty."""
    if not user_agent:
        return ("other", False)
    found = _memo.get(user_agent)
    if found is not None:
        return found
    is_bot = _BOT.search(user_agent) is not None
    family = "bot" if is_bot else "other"
    if not is_bot:
        for name, pattern in _FAMILIES:
            if pattern.search(user_agent):
                family = name
                break
    result = (family, is_bot)
    if len(_memo) >= _MEMO_LIMIT:
        _memo.clear()
    _memo[user_agent] = result
    return result
