"""Local environments built from real components: the loopback demo today, the netns anycast lab next.

Test suites use the same runners (nginx, ports), so what the demo shows is what the tests prove.
"""
