"""The HTTP shell of the control plane: FastAPI routes that authenticate, call ``control.service``
in one transaction, and map its errors to status codes."""
