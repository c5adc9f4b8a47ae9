"""Scoot-py: a Python, Thrift-compatible reimplementation of Twitter's Scoot distributed task runner."""

__version__ = "0.1.0"
