"""The worker: runs one command at a time for a scheduler (``workerserver``), plus its CLI (``workercl``).

Glossary:

* **run** - one execution of a ``RunCommand``; ids count from "0" per process. States PENDING -> RUNNING ->
  COMPLETE | FAILED | ABORTED | TIMEDOUT (``scootpy.runs``).
* **RunQueue** (``runqueue.py``) - capacity one, history one; Run and Abort serialized; queries never wait.
* **Invoker** (``invoker.py``) - one run's stages: checkout, log files, exec, abort/timeout, output snapshot.
* **Execer** (``execer/``) - starts a process: ``os.py`` for real commands (process groups, grace, memory
  cap), ``sim.py`` for ``#! sim execer`` fake commands.
* **Filer** (``filer.py``) - input snapshot checkouts and output snapshot ingestion over GitDB.
* **Outputs** (``outputs.py``) - ``<runId>-stdout...`` log files and the ``/output/`` HTTP app.
* **handler.py** - the Thrift edge; **main.py** - flags and wiring; **gotext.py** - Go-formatted text.
"""
