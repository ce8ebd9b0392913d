"""One module per command, imported on demand by tokline.cli."""
