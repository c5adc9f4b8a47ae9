"""The Scoot-py benchmark: `python -m bench` (or `make bench`) measures the performance table of the spec."""
