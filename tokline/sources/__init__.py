"""Log sources: where each assistant keeps its files and how its records become usage rows."""
