"""Health checking: probes (tcp, http, k8s), the rise/fall state machine, and the health process.

Pure parts (``state``, ``result``) have no I/O; ``probes`` and ``process`` are the shells.
"""
