"""The parts of ``bench/dataplane.py``: processes, probes, servers, measurements, rounds, report."""
