"""The four Thrift IDLs, loaded once with thriftpy2 under stable module names.

Import the modules from here (``from scootpy.idl import scoot, worker, sched, bazel``); never call
``thriftpy2.load`` elsewhere, so every struct class exists exactly once per process.
"""

from pathlib import Path

import thriftpy2


def idl_dir() -> Path:
    """Return the directory holding the .thrift files: shipped in the package, or the checkout's thrift/."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "idl", here.parent / "thrift"):
        if (candidate / "scoot.thrift").is_file():
            return candidate
    raise FileNotFoundError("Thrift IDL files not found next to the scootpy package")


def _load(name: str):
    return thriftpy2.load(str(idl_dir() / f"{name}.thrift"), module_name=f"{name}_thrift")


bazel = _load("bazel")
scoot = _load("scoot")
worker = _load("worker")
sched = _load("sched")
