"""The control plane (`anycastlb control`): tenants, IP pools, IPAM, load balancers, PoP sync."""
