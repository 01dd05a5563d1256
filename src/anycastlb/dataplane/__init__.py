"""The L4 proxy every packet goes through: listeners, relay, PROXY protocol codec, Maglev, limits."""
