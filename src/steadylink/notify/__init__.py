"""Channels that carry alerts to people: PagerDuty Events API v2 and Apprise URLs.

Notify never decides when (``watch/alerts.py`` does); it delivers what it is
given, in order per channel, on threads of its own, retrying with backoff.
"""
