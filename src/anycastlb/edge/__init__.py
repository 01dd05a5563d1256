"""The PoP agent: wires the data plane to its desired state (a config file today, the control plane later)."""
