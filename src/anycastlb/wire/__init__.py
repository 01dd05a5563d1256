"""Byte formats that cross a process or network boundary and that several parts share.

The PROXY protocol codec (written by the data plane, by health probes with ``send_proxy``) and the
messages between the health process and the data-plane workers. Pure: no sockets, no processes.
"""
