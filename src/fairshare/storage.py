"""File persistence for the core's state (an adapter: the core itself does no I/O).

The ledger file is written atomically: the text goes to a temporary file in the same
directory, is flushed to disk and renamed over the target (``os.replace``), so a crash leaves
either the old file or the new one, never half of one.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from fairshare.errors import InputError
from fairshare.ledger import Ledger

__all__ = ["atomic_write_text", "load_ledger", "save_ledger"]


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Replace ``path`` with ``text`` atomically (temporary file, fsync, rename)."""
    target = Path(path)
    if target.is_dir():
        raise InputError(f"{target} is a directory; give a file name such as ledger.json")
    if not target.parent.is_dir():
        raise InputError(f"{target}: the folder {target.parent} does not exist; create it first")
    # Keep the permissions of the file being replaced; a new file gets the usual umask.
    try:
        mode = target.stat().st_mode & 0o777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as exc:
        raise InputError(f"{target}: cannot write in {target.parent} ({exc.strerror})") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_ledger(ledger: Ledger, path: str | os.PathLike[str]) -> None:
    """Write ``ledger`` to ``path`` atomically."""
    atomic_write_text(path, ledger.to_json())


def load_ledger(path: str | os.PathLike[str]) -> Ledger:
    """Read a ledger file written by :func:`save_ledger`; :class:`InputError` if unusable."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{source}: no such ledger file; check the path") from None
    except IsADirectoryError:
        raise InputError(f"{source} is a directory; give the ledger file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{source}: cannot read the ledger file ({exc})") from None
    return Ledger.from_json(text, source=source)
