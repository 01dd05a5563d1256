"""WireGuard tunnels between PoPs and nodes: render, plan, bring up, supervise and observe them.

Pure pieces (no I/O): :mod:`wg_conf` (the ``wg setconf`` text), :mod:`plan` (what changes between two
sets of interfaces), :mod:`versions` (which node config the agent applies), :mod:`dump` (``wg show
dump`` parsed). I/O shells: :mod:`interface` (one interface: kernel module or wireguard-go),
:mod:`devices` (a set of interfaces kept equal to the desired ones), :mod:`metrics` (a Prometheus
collector) and :mod:`agent` (``anycastlb tunnel-agent``, the node side).
"""
