"""Packaging glue: setup.cfg holds the metadata; this only adds the IDL directory as package data."""
from setuptools import find_packages, setup

setup(packages=find_packages(include=["scootpy", "scootpy.*"]) + ["scootpy.idl"])
