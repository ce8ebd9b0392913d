"""One module per command, imported on demand by tokline.cli.

Each has ``run(name, argv) -> int``.  Tab completion (tokline/commands/completion.py)
reads a command's options from its argparse parser: from ``build_parser(name)`` where the
module has one, else by calling ``run(name, [])`` with parsing made to raise, so ``run``
builds its parser before it does anything else."""
