"""``anycastlb tenants|pools|ips|lb|pops``: the operator's and the tenant's command line.

It talks to the control plane only over HTTP (the same API as everyone else), so it imports none
of the server's code: the load balancer spec is validated locally with the tier contract
(``anycastlb.model.desired``) before it is sent. Each group is one module; ``session`` opens the
connection for a command and turns failures into an exit code (1: the control plane said no or
could not be reached; 2: bad input, found before any request). Start-up stays lean: httpx and rich
are imported only when a command runs.
"""
