"""The control plane's side of the WireGuard tunnels (model/tunnel.py): keys, tunnel addresses,
rotation, and what each PoP and each node receives. Pure modules here; the store work is in
``control/service/clusters.py``."""
