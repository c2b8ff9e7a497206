"""``python -m hubgate`` is the ``hubgate`` command."""

from hubgate.cli import main

main()
