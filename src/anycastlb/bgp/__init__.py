"""BGP: the announce policy (pure) and the speaker that carries it out (ExaBGP, supervised)."""
