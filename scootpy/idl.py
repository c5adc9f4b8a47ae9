"""The four Thrift IDLs, loaded once with thriftpy2 under stable module names.

Import the modules from here (``from scootpy.idl import scoot, worker, sched, bazel``); never call
``thriftpy2.load`` elsewhere, so every struct class exists exactly once per process.
"""

import sys
from pathlib import Path

from ply import lex, yacc
from thriftpy2.parser import parser as _grammar


def idl_dir() -> Path:
    """Return the directory holding the .thrift files: shipped in the package, or the checkout's thrift/."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "idl", here.parent / "thrift"):
        if (candidate / "scoot.thrift").is_file():
            return candidate
    raise FileNotFoundError("Thrift IDL files not found next to the scootpy package")


# thriftpy2.load builds PLY's lexer and LALR tables again for every file (about 15 ms each); one pair serves
# all four files, which takes a third off every process's start-up.
_LEXER = lex.lex(module=_grammar)
_PARSER = yacc.yacc(module=_grammar, debug=False, write_tables=False)


def _load(name: str):
    """What ``thriftpy2.load(path, module_name=...)`` does, with the shared lexer and parser."""
    module_name = f"{name}_thrift"
    thrift = _grammar.parse(str(idl_dir() / f"{name}.thrift"), module_name, lexer=_LEXER, parser=_PARSER)
    sys.modules[module_name] = thrift
    pending = list(thrift.__thrift_meta__["includes"])
    while pending:
        included = pending.pop()
        known = sys.modules.get(included.__thrift_module_name__)
        if known is None:
            sys.modules[included.__thrift_module_name__] = included
            pending.extend(getattr(included, "__thrift_meta__", {}).get("includes", []))
        elif known.__thrift_file__ != included.__thrift_file__:
            raise ImportError(f"Thrift module name conflict: {known.__thrift_file__} and {included.__thrift_file__}")
    return thrift


bazel = _load("bazel")
scoot = _load("scoot")
worker = _load("worker")
sched = _load("sched")
