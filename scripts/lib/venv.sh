# Sourced by scripts/*: run the project's commands from its virtualenv (.venv at the repository's
# root, made by scripts/setup). A stock Debian Python refuses `pip install` outside a venv (PEP 668),
# and a venv keeps the machine's own Python packages untouched.
VENV_DIR="${ANYCASTLB_VENV:-$PWD/.venv}"
export VIRTUAL_ENV="$VENV_DIR"
export PATH="$VENV_DIR/bin:$PATH"
