"""The control plane's operations: one module per kind of object, each a set of functions that take
an open SQLAlchemy session, check what the caller may do, and raise ``control.errors`` on refusal.
No HTTP here: the API (``control/api``) and the tests call the same functions."""
