"""Snapshots: immutable filesystem states stored in git and moved between machines as git bundles.

Glossary:
  snapshot id    ``<backend>-<kind>-...``; what travels is ``bs-fs-<tree>--<tree>`` / ``bs-gc-<commit>--<commit>``
                 (see ids.py). ``bz-`` ids are Bazel's and never reach this package.
  fs / gc        kinds: an ``fs`` snapshot is a git tree (a directory as ``git add --all`` would stage it), a
                 ``gc`` snapshot a git commit.
  data repo      the git repository a GitDB keeps objects in; its work tree is where ``gc`` checkouts go.
  bundle         ``bs-<key>.bundle``: a git v2 bundle holding a snapshot's objects (a wrapper commit for fs).
  store          a flat key/value home for bundles: ``FileStore`` (a directory) or ``HttpStore`` (an
                 ``apiserver``'s ``/bundle/``).
  stream         an upstream repository every machine can fetch; bundles may start at a stream commit.
  checkout       a directory holding a snapshot, lent to a caller until released.

Module map: ids (parse/format), store (FileStore, HttpStore), git (running git), bundles (bundle format,
upload checks), gitdb (GitDB), checkouts (fs checkouts and their cache), worktree (gc checkouts), streams,
bundlestore (the HTTP apps), apiserver (the binary), cli (``scoot-snapshot-db``).
"""
