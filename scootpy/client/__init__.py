"""The client side of Scoot: ``scootapi``, ``setup-cloud-scoot`` and the standalone test harnesses.

Glossary:

* **address file**: ``~/.cloudscootaddr$SCOOT_ID``, ``<scheduler thrift>\\n<apiserver http>`` (``addrs``).
* **cobra dialect**: scootapi's flag syntax (``--name value``, interleaved flags, ``--``), see ``cobra``.
* **local cluster**: apiservers, workers and a scheduler started as child processes on the reference's
  fixed ports (``cluster``, ``cmds``); ``SCOOT_PORT_OFFSET`` shifts them all for side-by-side clusters.
* **harnesses**: the smoke test (``smoke``), ``recoverytest`` and ``scoot-integration``, sharing ``jobhelpers``.
* **Go rendering**: JSON and ``%+v`` text byte-compatible with the reference CLI's stdout (``jsonout``).
"""
