"""The files a sweep keeps under `--storage`, local or in object storage.

`--storage` is a local directory or a URI that pyarrow.fs opens (`s3://bucket/prefix`,
`gs://...`, `hdfs://...`, `file:///...`), as Ray Tune's own `storage_path` is: the
sweep driver's files (its state file, the pending tracking operations, best.cfg,
the report's copy) live beside Ray Tune's experiment state, read and written here.
An S3 endpoint other than AWS's comes from the environment (AWS_ENDPOINT_URL_S3 or
AWS_ENDPOINT_URL, read by pyarrow) or from the URI's query
(`s3://bucket/prefix?endpoint_override=host:port&scheme=http`), which every join
below keeps. Objects are written whole (an object store's PUT is atomic); local
files are written beside and renamed.

No Ray or MLflow import: plain pyarrow.fs.
"""

import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, List, Tuple, Union

import pyarrow.fs as pafs

_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+://")

Location = Union[str, Path]


def is_uri(location: Location) -> bool:
    """`scheme://...` (file:// included): opened through pyarrow.fs, not as a plain path."""
    return bool(_URI.match(str(location)))


def absolute(location: Location) -> str:
    """A URI as it is; a local path made absolute."""
    return str(location) if is_uri(location) else os.path.abspath(os.path.expanduser(str(location)))


def join(location: Location, *names: str) -> str:
    """location/names..., keeping a URI's query (its endpoint settings) at the end."""
    if not is_uri(location):
        return os.path.join(absolute(location), *names)
    base, sep, query = str(location).partition("?")
    return "/".join([base.rstrip("/"), *names]) + sep + query


def name(location: Location) -> str:
    """The last part of a location (a sweep folder's name)."""
    return str(location).partition("?")[0].rstrip("/").rsplit("/", 1)[-1]


def parent(location: Location) -> str:
    """The folder a location is in."""
    if not is_uri(location):
        return os.path.dirname(absolute(location))
    base, sep, query = str(location).partition("?")
    return base.rstrip("/").rsplit("/", 1)[0] + sep + query


def as_result(location: Location) -> Union[Path, str]:
    """How a sweep reports a location: a Path when local, else the URI."""
    return location if is_uri(location) else Path(location)


def _fs(location: Location) -> Tuple[pafs.FileSystem, str]:
    if is_uri(location):
        return pafs.FileSystem.from_uri(str(location))
    return pafs.LocalFileSystem(), absolute(location)


def exists(location: Location) -> bool:
    fs, path = _fs(location)
    return fs.get_file_info(path).type != pafs.FileType.NotFound


def mtime(location: Location) -> float:
    fs, path = _fs(location)
    info = fs.get_file_info(path)
    return info.mtime.timestamp() if info.mtime is not None else 0.0


def read_text(location: Location) -> str:
    if not is_uri(location):
        return Path(location).read_text(encoding="utf8")
    fs, path = _fs(location)
    if fs.get_file_info(path).type == pafs.FileType.NotFound:
        raise FileNotFoundError(f"{location} does not exist")
    with fs.open_input_stream(path) as stream:
        return stream.read().decode("utf8")


def write_text(location: Location, text: str) -> None:
    """Replace the file (its folder made if need be) with text, all or nothing."""
    if not is_uri(location):
        path = Path(absolute(location))
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        partial.write_text(text, encoding="utf8")
        os.replace(partial, path)
        return
    fs, fs_path = _fs(location)
    if isinstance(fs, pafs.LocalFileSystem):  # file://: folders are real (an object store has none to make)
        fs.create_dir(fs_path.rsplit("/", 1)[0], recursive=True)
    with fs.open_output_stream(fs_path) as stream:
        stream.write(text.encode("utf8"))


def can_append(location: Location) -> bool:
    """Local files take appends; objects are rewritten whole."""
    return not is_uri(location)


def append_text(location: Location, text: str) -> None:
    with open(absolute(location), "a", encoding="utf8") as out:
        out.write(text)


def delete(location: Location) -> None:
    fs, path = _fs(location)
    if fs.get_file_info(path).type == pafs.FileType.File:
        fs.delete_file(path)


def make_dirs(location: Location) -> None:
    fs, path = _fs(location)
    fs.create_dir(path, recursive=True)


def folders(location: Location) -> List[str]:
    """The folders directly under location, as locations ([] when there is none)."""
    fs, path = _fs(location)
    infos = fs.get_file_info(pafs.FileSelector(path, allow_not_found=True))
    return [join(location, info.base_name) for info in infos if info.type == pafs.FileType.Directory]


@contextmanager
def local_dir(location: Location) -> Iterator[Path]:
    """A local directory whose files end up at location: the directory itself when
    local, else a temporary one uploaded when the block ends without error."""
    if not is_uri(location):
        Path(absolute(location)).mkdir(parents=True, exist_ok=True)
        yield Path(absolute(location))
        return
    temp = Path(tempfile.mkdtemp(prefix="archsweep-"))
    try:
        yield temp
        fs, path = _fs(location)
        fs.create_dir(path, recursive=True)
        pafs.copy_files(str(temp), path, source_filesystem=pafs.LocalFileSystem(), destination_filesystem=fs)
    finally:
        shutil.rmtree(temp, ignore_errors=True)
