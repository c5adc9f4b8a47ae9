"""``scoot-snapshot-db``: create, read and export snapshots from the command line.

Runs inside a git repository, which is the data repository (as in the reference). stdout carries only the
result (one line, or raw file bytes for ``read cat``); errors print ``Error: <text>`` on stderr and exit 1.
The bundlestore is ``--bundlestore_url``, else ``$SCOOT_BUNDLESTORE_URL``, else line 2 of
``~/.cloudscootaddr$SCOOT_ID`` as ``http://<addr>/bundle/``. ``--log_level`` and ``--bundlestore_url`` may
appear anywhere on the command line.
"""

import hashlib
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import List, Optional, Tuple

import click

from scootpy.flags import parse_duration
from scootpy.logs import setup_logging
from scootpy.snapshots import git
from scootpy.snapshots.checkouts import remove_tree
from scootpy.snapshots.gitdb import GitDB
from scootpy.snapshots.ids import Kind, SnapshotError, bundlestore_id
from scootpy.snapshots.store import HttpStore, addr_from_cloudscootaddr

log = logging.getLogger(__name__)

URL_ENV = "SCOOT_BUNDLESTORE_URL"
DEFAULT_BUNDLE_TTL = "4320h0m0s"
OUTPUT_TYPES = ("location", "snapshot-id")
_GLOBAL_FLAGS = ("log_level", "bundlestore_url")


class CliError(Exception):
    """A failure reported as ``Error: <text>`` with exit status 1."""


def resolve_url(flag_value: str) -> str:
    """The bundlestore root URL: the flag, then the environment, then the address file."""
    if flag_value:
        return flag_value
    if os.environ.get(URL_ENV):
        return os.environ[URL_ENV]
    addr = addr_from_cloudscootaddr(os.environ.get("HOME"))
    if addr:
        return f"http://{addr}/bundle/"
    raise CliError(f"could not resolve: no delegate resolved: [--bundlestore_url ${URL_ENV} "
                   f"~/.cloudscootaddr{os.environ.get('SCOOT_ID', '')}]")


def open_db(ctx: click.Context, private: bool = False) -> GitDB:
    """The GitDB over the repository containing the working directory, or (``private``) over a temporary
    repository so that reading leaves the user's repository untouched, like the reference's temp repo.
    It is closed, and a private repository removed, when the command ends."""
    wd = os.getcwd()
    try:
        top = git.toplevel(wd)
    except SnapshotError as exc:
        raise CliError(f"cannot create a repo in wd {wd}; scoot-snapshot-db must be run in a git repo: {exc}") \
            from None
    url = resolve_url(ctx.obj["bundlestore_url"])
    log.info("Making new HTTP Store with root URI: %s", url)
    if private:
        top = Path(tempfile.mkdtemp(prefix="scoot-snapshot-db-"))
        ctx.call_on_close(lambda: remove_tree(top))
    db = GitDB(top, HttpStore(url))
    ctx.call_on_close(db.close)
    return db


def split_global_flags(argv: List[str]) -> Tuple[dict, List[str]]:
    """Take ``--log_level``/``--bundlestore_url`` (also ``-name``, ``=value`` forms) out of ``argv``."""
    found, rest, i = {}, [], 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            rest += argv[i:]
            break
        name, eq, value = arg.lstrip("-").partition("=")
        if arg.startswith("-") and name in _GLOBAL_FLAGS:
            if not eq:
                if i + 1 >= len(argv):
                    raise CliError(f"flag needs an argument: --{name}")
                i += 1
                value = argv[i]
            found[name] = value
        else:
            rest.append(arg)
        i += 1
    return found, rest


def emit_line(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Create and read Scoot snapshots.

    \b
    Flags accepted anywhere on the command line:
      --bundlestore_url URL   bundlestore root, e.g. http://localhost:9094/bundle
                              (default: $SCOOT_BUNDLESTORE_URL, then ~/.cloudscootaddr$SCOOT_ID)
      --log_level LEVEL       error|warn|info|debug (default info)
    """


@cli.command("help")
@click.argument("command", nargs=-1)
@click.pass_context
def help_command(ctx: click.Context, command: Tuple[str, ...]) -> None:
    """Help about any command, e.g. help create ingest_dir."""
    target, parent = cli, ctx.parent
    for name in command:
        sub = target.get_command(parent, name) if isinstance(target, click.Group) else None
        if sub is None:
            raise CliError(f'unknown command "{name}" for "scoot-snapshot-db"')
        parent = click.Context(sub, info_name=name, parent=parent)
        target = sub
    sys.stdout.write(target.get_help(parent if command else ctx.parent) + "\n")


@cli.group()
def create() -> None:
    """Create snapshots."""


@create.command("ingest_git_working_dir")
@click.pass_context
def ingest_git_working_dir(ctx: click.Context) -> None:
    """Ingest HEAD plus uncommitted and untracked files of the current repo as a gc snapshot."""
    db = open_db(ctx)
    emit_line(db.ingest_git_working_dir(db.repo))


@create.command("ingest_git_commit")
@click.option("--commit", default="", help="commit to ingest")
@click.pass_context
def ingest_git_commit(ctx: click.Context, commit: str) -> None:
    """Ingest a git commit of the current repo."""
    db = open_db(ctx)
    emit_line(db.ingest_git_commit(db.repo, commit))


@create.command("ingest_dir")
@click.option("--dir", "directory", default="", help="dir to ingest")
@click.pass_context
def ingest_dir(ctx: click.Context, directory: str) -> None:
    """Ingest a directory (relative paths are relative to the repo's top level)."""
    db = open_db(ctx)
    if not directory:
        raise CliError("ingest_dir requires --dir")
    emit_line(db.ingest_dir(db.repo / directory))


@create.command("publish_git_bundle")
@click.option("--basis", default="", help="Basis for bundle")
@click.option("--ref", default="master", help="Reference to be packaged")
@click.option("--ttl", default=DEFAULT_BUNDLE_TTL, help="Stored bundle TTL (duration from now)")
@click.option("--output", "output", default="location", help=f"Output type, one of: {list(OUTPUT_TYPES)}")
@click.pass_context
def publish_git_bundle(ctx: click.Context, basis: str, ref: str, ttl: str, output: str) -> None:
    """Create and upload a git bundle of basis..ref of the current repo."""
    db = open_db(ctx)
    if not basis or not ref:
        raise CliError("Create bundle command requires a basis and reference")
    if basis.startswith("-") or ref.startswith("-"):
        raise CliError("--basis and --ref may not start with '-'")
    if output not in OUTPUT_TYPES:
        raise CliError('Output type must be one of: ["location" "snapshot-id"]')
    try:
        ttl_s = parse_duration(ttl)
    except ValueError as exc:
        raise CliError(f'invalid argument "{ttl}" for "--ttl" flag: {exc}') from None
    rev_list = f"{basis}..{ref}"
    rev_data = git.run(["rev-list", rev_list], db.repo)
    commit = git.run_text(["rev-parse", ref], db.repo)
    key = hashlib.sha1(rev_data + ref.encode()).hexdigest()
    name = f"bs-{key}.bundle"
    with tempfile.TemporaryDirectory(dir=db.tmp) as scratch:
        path = Path(scratch) / name
        git.run(["-c", "core.packobjectedgesonlyshallow=0", "bundle", "create", str(path), rev_list], db.repo)
        with open(path, "rb") as f:
            db.store.write(name, f, ttl_s)
    emit_line(db.store.root + name if output == "location" else bundlestore_id(Kind.GC, commit, key))


@cli.group()
def read() -> None:
    """Read snapshots."""


@read.command("cat")
@click.option("--id", "snapshot_id", default="", help="Snapshot ID to read from")
@click.argument("files", nargs=-1)
@click.pass_context
def cat(ctx: click.Context, snapshot_id: str, files: Tuple[str, ...]) -> None:
    """Print files of a snapshot, concatenated without separators."""
    db = open_db(ctx, private=True)
    for name in files:
        sys.stdout.buffer.write(db.read_file(snapshot_id, name))
        sys.stdout.buffer.flush()


@cli.group()
def export() -> None:
    """Export snapshots."""


@export.command("to_git_commit")
@click.option("--id", "snapshot_id", default="", help="Snapshot ID to export")
@click.pass_context
def to_git_commit(ctx: click.Context, snapshot_id: str) -> None:
    """Export a gc snapshot as a commit in the current repo; print its sha."""
    db = open_db(ctx)
    emit_line(db.export_git_commit(snapshot_id, db.repo))


def main(argv: Optional[List[str]] = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    try:
        flags, rest = split_global_flags(argv)
        setup_logging(flags.get("log_level", "info"))
        cli.main(rest, prog_name="scoot-snapshot-db", standalone_mode=False,
                 obj={"bundlestore_url": flags.get("bundlestore_url", "")})
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.NoArgsIsHelpError as exc:
        sys.stdout.write(exc.ctx.get_help() + "\n")
        sys.exit(0)
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
    except (click.ClickException, CliError, SnapshotError, ValueError, OSError) as exc:
        text = exc.format_message() if isinstance(exc, click.ClickException) else str(exc)
        sys.stderr.write(f"Error: {text}\n")
        sys.exit(1)
    except click.Abort:
        sys.exit(1)
