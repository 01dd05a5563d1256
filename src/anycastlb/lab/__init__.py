"""Local environments built from real components: the loopback demo, the netns anycast lab (BGP,
failover) and the ACME lab (cert-manager's HTTP-01 through the edge, with pebble).

Test suites use the same runners (nginx, ports), so what the demo shows is what the tests prove.
"""
