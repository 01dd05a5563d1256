"""``python -m anycastlb``: the same command as the ``anycastlb`` script, for a checkout without one."""

from anycastlb.cli import main

main()
