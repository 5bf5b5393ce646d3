"""Watch: the guard's eyes — the event journal, probes, SLOs, the error budget and alert rules.

Runs inside the guard (``steadylink up``), never in the request path.
"""
