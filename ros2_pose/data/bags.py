"""Reading and writing rosbag2 bags (mcap or sqlite3) with rosbags, ROS-free.

Writers take rosbags message objects (`write`) or already-serialised CDR bytes (`write_raw`, what an
rclpy raw subscription hands over). Readers merge one or more bags by time and deserialise with
ros2_pose's typestore (`ros2_pose.data.bag_types`), so our custom messages read back as objects.
Every failure on bad input is a `BagError` naming the file and what was wrong.
"""
from __future__ import annotations

import shutil
import sqlite3
import struct
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rosbags.highlevel import AnyReader, AnyReaderError
from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime
from rosbags.rosbag2 import CompressionFormat, CompressionMode, ReaderError, StoragePlugin, Writer, WriterError
from rosbags.serde import SerdeError
from rosbags.typesys import TypesysError

from ros2_pose.data.bag_types import typestore

STORAGES = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}
_STORAGE_SUFFIX = {".mcap": "mcap", ".db3": "sqlite3"}
# Topics whose publishers are latched (transient local): players must republish them that way.
TRANSIENT_LOCAL_TOPICS = frozenset({"/tf_static"})


class BagError(RuntimeError):
    """Base of every bag problem; the message names the file and what was wrong."""


class BagNotFoundError(BagError):
    pass


class NotABagError(BagError):
    pass


class EmptyBagError(BagError):
    pass


class CorruptBagError(BagError):
    pass


class BagExistsError(BagError):
    pass


class MissingTopicError(BagError):
    def __init__(self, message: str, missing: Sequence[str], available: Sequence[str]):
        super().__init__(message)
        self.missing = list(missing)
        self.available = list(available)


def qos_profile(transient_local: bool = False, depth: int = 10) -> Qos:
    """A rosbag2 QoS record: reliable, keep-last; transient local for latched topics (/tf_static)
    so that `ros2 bag play` offers them latched to late subscribers. Zero times mean 'default'."""
    zero = QosTime(0, 0)
    return Qos(
        history=QosHistory.KEEP_LAST, depth=depth, reliability=QosReliability.RELIABLE,
        durability=QosDurability.TRANSIENT_LOCAL if transient_local else QosDurability.VOLATILE,
        deadline=zero, lifespan=zero, liveliness=QosLiveliness.AUTOMATIC,
        liveliness_lease_duration=zero, avoid_ros_namespace_conventions=False)


def _is_bag_dir(path: Path) -> bool:
    return (path / "metadata.yaml").is_file() or any(
        p.suffix in _STORAGE_SUFFIX for p in path.iterdir())


class BagWriter:
    """Context manager writing one rosbag2 bag.

        with BagWriter("out_bag", storage="mcap") as bag:
            bag.write("/ground_truth/pose", pose_msg, stamp_ns)

    Topics are added on first write (or explicitly with `add_topic`, e.g. to pick QoS). The bag is
    closed (metadata written, readable) on leaving the block, also when an exception ends it, so
    what was recorded before a crash or Ctrl-C is kept.

    `compress=True` zstd-compresses each message (rosbag2's message-level compression, which
    `ros2 bag play` and every reader here understand): rendered images shrink several times.
    """

    def __init__(self, path: str | Path, storage: str = "mcap", overwrite: bool = False, compress: bool = False):
        if storage not in STORAGES:
            raise ValueError(f"storage must be one of {sorted(STORAGES)}, got {storage!r}")
        self.path = Path(path)
        self.storage = storage
        self.overwrite = overwrite
        self.compress = compress
        self._writer: Writer | None = None
        self._connections: dict[str, Any] = {}
        self.counts: dict[str, int] = {}

    # -- life cycle ---------------------------------------------------------------------------
    def open(self) -> BagWriter:
        if self.path.exists():
            if not self.overwrite:
                raise BagExistsError(f"{self.path} exists already; pass overwrite=True to replace it")
            # Only ever delete something that is a bag (or an empty folder), never a random tree.
            if self.path.is_dir() and (not any(self.path.iterdir()) or _is_bag_dir(self.path)):
                shutil.rmtree(self.path)
            else:
                raise BagExistsError(f"{self.path} exists and is not a bag; refusing to delete it")
        self._writer = Writer(self.path, version=Writer.VERSION_LATEST, storage_plugin=STORAGES[self.storage])
        if self.compress:
            self._writer.set_compression(CompressionMode.MESSAGE, CompressionFormat.ZSTD)
        try:
            self._writer.open()
        except WriterError as exc:
            raise BagError(f"cannot create bag {self.path}: {exc}") from exc
        return self

    def close(self) -> None:
        if self._writer is not None:
            writer, self._writer = self._writer, None
            writer.close()

    def __enter__(self) -> BagWriter:
        return self.open()

    def __exit__(self, *exc_info) -> None:
        self.close()

    # -- topics and messages ------------------------------------------------------------------
    def add_topic(self, topic: str, msgtype: str, transient_local: bool | None = None) -> None:
        """Declare `topic` of `msgtype` (`pkg/msg/Type`). Latched (transient local) QoS metadata is
        written for /tf_static unless `transient_local` says otherwise. Re-adding with the same type
        is a no-op; with another type it is an error (a bag topic has one type)."""
        if self._writer is None:
            raise BagError(f"bag {self.path} is not open (use `with BagWriter(...)`)")
        known = self._connections.get(topic)
        if known is not None:
            if known.msgtype != msgtype:
                raise BagError(f"topic {topic} of bag {self.path} has type {known.msgtype}, not {msgtype}")
            return
        store = typestore()
        if msgtype not in store.fielddefs:
            raise BagError(f"message type {msgtype!r} of topic {topic} is unknown to ros2_pose's typestore")
        latched = topic in TRANSIENT_LOCAL_TOPICS if transient_local is None else transient_local
        self._connections[topic] = self._writer.add_connection(
            topic, msgtype, typestore=store, offered_qos_profiles=[qos_profile(latched)])
        self.counts[topic] = 0

    def write(self, topic: str, msg: Any, stamp_ns: int) -> None:
        """Serialise a rosbags message object and write it at bag time `stamp_ns`."""
        msgtype = getattr(msg, "__msgtype__", None)
        if msgtype is None:
            raise TypeError(f"expected a rosbags message object for {topic}, got {type(msg).__name__}")
        self.add_topic(topic, msgtype)
        self.write_raw(topic, msgtype, typestore().serialize_cdr(msg, msgtype), stamp_ns)

    def write_raw(self, topic: str, msgtype: str, data: bytes | memoryview, stamp_ns: int) -> None:
        """Write already-serialised CDR bytes (e.g. from an rclpy raw subscription)."""
        if stamp_ns < 0:
            raise ValueError(f"stamp_ns must be >= 0, got {stamp_ns} for {topic}")
        self.add_topic(topic, msgtype)
        assert self._writer is not None
        self._writer.write(self._connections[topic], int(stamp_ns), data)
        self.counts[topic] += 1


# -- reading ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class BagInfo:
    path: Path
    topics: dict[str, tuple[str, int]]  # name -> (type, message count)
    start_ns: int  # stamp of the first message
    end_ns: int  # stamp of the last message
    storage: str  # "mcap" | "sqlite3"
    size_bytes: int
    message_count: int = field(default=0)
    # Topics recorded from transient-local (latched) publishers, plus /tf_static: replay them latched.
    latched_topics: frozenset[str] = field(default=frozenset())

    @property
    def duration_ns(self) -> int:
        return self.end_ns - self.start_ns

    @property
    def duration_s(self) -> float:
        return self.duration_ns * 1e-9


@dataclass(frozen=True)
class BagMessage:
    topic: str
    msgtype: str
    stamp_ns: int  # bag (receive) time
    msg: Any  # rosbags message object


@dataclass(frozen=True)
class RawBagMessage:
    topic: str
    msgtype: str
    stamp_ns: int
    data: bytes  # CDR


# Everything a broken or foreign file makes rosbags and the storage libraries throw.
_READ_ERRORS = (AnyReaderError, ReaderError, SerdeError, TypesysError, sqlite3.Error, struct.error,
                EOFError, ValueError, KeyError, IndexError, AssertionError, UnicodeDecodeError, OSError)


def _as_paths(paths: str | Path | Iterable[str | Path]) -> list[Path]:
    if isinstance(paths, (str, Path)):
        return [Path(paths)]
    out = [Path(p) for p in paths]
    if not out:
        raise BagError("no bag paths given")
    return out


def _storage_source(path: Path) -> Path:
    """What rosbags should open for `path`: the bag folder, or a bare .mcap/.db3 file. A folder
    without metadata.yaml (a recorder killed before closing) is read through its one storage file."""
    if not path.exists():
        raise BagNotFoundError(f"bag {path} does not exist")
    if path.is_file():
        if path.suffix not in _STORAGE_SUFFIX:
            raise NotABagError(f"{path} is not a bag: expected a bag folder, a .mcap or a .db3 file")
        return path
    if (path / "metadata.yaml").is_file():
        return path
    files = sorted(p for p in path.iterdir() if p.suffix in _STORAGE_SUFFIX)
    if len(files) == 1:
        return files[0]
    if not files:
        raise NotABagError(f"{path} is not a bag: no metadata.yaml and no .mcap/.db3 file in it")
    raise NotABagError(f"{path} has no metadata.yaml and several storage files {[f.name for f in files]}")


def _storage_of(source: Path) -> str:
    files = [source] if source.is_file() else [p for p in source.iterdir() if p.suffix in _STORAGE_SUFFIX]
    kinds = {_STORAGE_SUFFIX[p.suffix] for p in files}
    return kinds.pop() if len(kinds) == 1 else "unknown"


def _size_of(source: Path) -> int:
    if source.is_file():
        return source.stat().st_size
    return sum(p.stat().st_size for p in source.rglob("*") if p.is_file())


def _open_reader(paths: list[Path]) -> tuple[AnyReader, list[Path]]:
    sources = [_storage_source(p) for p in paths]
    where = ", ".join(str(p) for p in paths)
    try:
        reader = AnyReader(sources, default_typestore=typestore())
        reader.open()
    except FileNotFoundError as exc:
        raise NotABagError(f"{where}: not a readable bag ({exc})") from exc
    except _READ_ERRORS as exc:
        raise CorruptBagError(f"{where}: cannot open bag, the file is damaged or not a rosbag2 "
                              f"storage ({type(exc).__name__}: {exc})") from exc
    return reader, sources


def _offered_latched(connection) -> bool:
    profiles = getattr(connection.ext, "offered_qos_profiles", None) or []
    return bool(profiles) and all(q.durability == QosDurability.TRANSIENT_LOCAL for q in profiles)


def bag_info(path: str | Path, allow_empty: bool = False) -> BagInfo:
    """Topics, counts and time range of one bag. An empty bag (no messages) is an EmptyBagError
    unless `allow_empty`."""
    path = Path(path)
    reader, sources = _open_reader([path])
    try:
        topics = {name: (info.msgtype or "?", info.msgcount) for name, info in reader.topics.items()}
        count = reader.message_count
        if count == 0 and not allow_empty:
            raise EmptyBagError(f"bag {path} holds no messages (topics: {sorted(topics) or 'none'})")
        start, end = (reader.start_time, reader.end_time - 1) if count else (0, 0)
        latched = {c.topic for c in reader.connections if _offered_latched(c)} | (TRANSIENT_LOCAL_TOPICS & set(topics))
        return BagInfo(path=path, topics=topics, start_ns=start, end_ns=end,
                       storage=_storage_of(sources[0]), size_bytes=_size_of(sources[0]),
                       message_count=count, latched_topics=frozenset(latched))
    except _READ_ERRORS as exc:
        raise CorruptBagError(f"bag {path}: unreadable metadata ({type(exc).__name__}: {exc})") from exc
    finally:
        reader.close()


def _select(reader: AnyReader, where: str, topics: Sequence[str] | None) -> list:
    available = sorted({c.topic for c in reader.connections})
    if topics is None:
        return list(reader.connections)
    missing = [t for t in topics if t not in available]
    if missing:
        raise MissingTopicError(f"{where}: topics {missing} not in the bag; it has {available}",
                                missing, available)
    return [c for c in reader.connections if c.topic in set(topics)]


def _iter_connections(paths, topics, start_ns, stop_ns) -> Iterator[tuple[AnyReader, Any, int, bytes]]:
    paths = _as_paths(paths)
    where = ", ".join(str(p) for p in paths)
    reader, _ = _open_reader(paths)
    try:
        try:
            total = reader.message_count
        except _READ_ERRORS as exc:
            raise CorruptBagError(f"{where}: unreadable metadata ({exc})") from exc
        if total == 0:
            raise EmptyBagError(f"{where}: the bag holds no messages")
        connections = _select(reader, where, topics)
        expected = sum(c.msgcount for c in connections)
        seen = 0
        try:
            for connection, stamp, data in reader.messages(connections=connections, start=start_ns, stop=stop_ns):
                seen += 1
                yield reader, connection, stamp, data
        except _READ_ERRORS as exc:
            raise CorruptBagError(f"{where}: damaged after {seen} of {expected} messages "
                                  f"({type(exc).__name__}: {exc})") from exc
        # A truncated storage file may still parse up to the cut: compare with the recorded counts.
        if start_ns is None and stop_ns is None and seen < expected:
            raise CorruptBagError(f"{where}: bag lists {expected} messages but only {seen} could be "
                                  "read; the storage file is truncated or damaged")
    finally:
        reader.close()


def iter_raw(paths: str | Path | Iterable[str | Path], topics: Sequence[str] | None = None,
             start_ns: int | None = None, stop_ns: int | None = None) -> Iterator[RawBagMessage]:
    """Messages of one or more bags, merged by bag time, as CDR bytes (no deserialisation)."""
    for _, connection, stamp, data in _iter_connections(paths, topics, start_ns, stop_ns):
        yield RawBagMessage(connection.topic, connection.msgtype, stamp, bytes(data))


def iter_messages(paths: str | Path | Iterable[str | Path], topics: Sequence[str] | None = None,
                  start_ns: int | None = None, stop_ns: int | None = None) -> Iterator[BagMessage]:
    """Messages of one or more bags, merged by bag time, deserialised into rosbags objects.

    Our typestore decodes every type whose definition matches the bag's (same RIHS01 hash, or a
    bag that embeds no hash); a type recorded with a different definition is decoded with the
    bag's own embedded definition instead, so an old bag never decodes into garbage."""
    ours = typestore()
    decoder_of: dict[int, Any] = {}
    for reader, connection, stamp, data in _iter_connections(paths, topics, start_ns, stop_ns):
        key = id(connection)
        decoder = decoder_of.get(key)
        if decoder is None:
            same = connection.msgtype in ours.fielddefs and (
                not connection.digest or connection.digest == ours.hash_rihs01(connection.msgtype))
            decoder = decoder_of[key] = ours if same else reader.typestore
        try:
            msg = decoder.deserialize_cdr(data, connection.msgtype)
        except _READ_ERRORS as exc:
            raise CorruptBagError(f"message on {connection.topic} at {stamp} ns does not decode as "
                                  f"{connection.msgtype} ({type(exc).__name__}: {exc})") from exc
        yield BagMessage(connection.topic, connection.msgtype, stamp, msg)
