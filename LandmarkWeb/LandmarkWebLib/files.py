"""The files a session may read: the server's data folder (nothing outside it) and size-limited uploads."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from LandmarkCoreLib.errors import InputError

LANDMARK_SUFFIXES = (".mrk.json", ".fcsv", ".csv")


class DataFolder:
    """Relative names of files under ``root``; a name resolving outside it (``..``, links) is refused."""

    def __init__(self, root: str | Path | None) -> None:
        self.root = Path(root).resolve() if root else None

    def list(self, suffixes: tuple[str, ...]) -> list[str]:
        """Every file under the folder with one of ``suffixes``, as sorted relative names."""
        if self.root is None:
            return []
        names = (p.relative_to(self.root).as_posix() for p in self.root.rglob("*") if p.is_file())
        return sorted(n for n in names if n.lower().endswith(suffixes))

    def path(self, name: str, what: str) -> Path:
        """The file ``name`` inside the data folder; InputError for anything else."""
        if self.root is None:
            raise InputError(what, "the server was started without --data-folder")
        path = (self.root / str(name)).resolve()
        if not path.is_relative_to(self.root) or not path.is_file():
            raise InputError(what, f"'{name}' is not a file of the data folder")
        return path


class Uploads:
    """Uploaded files written to a private temporary folder, refused above ``limit_bytes``."""

    def __init__(self, limit_bytes: int) -> None:
        self.limit_bytes = limit_bytes
        self._folder = tempfile.TemporaryDirectory(prefix="landmark-web-")

    def save(self, upload: dict, suffixes: tuple[str, ...], what: str) -> Path:
        """Write the browser's file dict (name, content) and return its path; InputError when refused."""
        from trame.app.file_upload import ClientFile

        upload = ClientFile(upload)
        name, content = str(upload.name or ""), upload.content or b""
        if max(len(content), upload.size or 0) > self.limit_bytes:
            raise InputError(what, f"'{name}' is larger than {self.limit_bytes // 2**20} MiB")
        if not name.lower().endswith(suffixes):
            raise InputError(what, f"'{name}' is not one of {', '.join(suffixes)}")
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", Path(name).name).lstrip(".") or "upload"
        folder = Path(tempfile.mkdtemp(dir=self._folder.name))
        path = folder / safe
        path.write_bytes(bytes(content))
        return path
