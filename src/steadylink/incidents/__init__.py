"""Incidents: records, timelines, the public status page, error groups and post-incident reports.

An incident is opened by the guard when users were hurt (a page, a rollback
after a release reached users, an alert after ``deploy --no-canary``) or by a
person; its timeline is written from the event journal. This part never pages
anyone itself: it tells status-page subscribers of what an operator made public.
"""
