"""A durable, ordered queue of tracking writes, whatever the tracker.

Every write a sweep makes (create a run, log a batch, end a run) is an `Operation`:
a small JSON-able dict. The queue writes operations in order through the tracker's
`apply`; when the server cannot be reached it keeps them (in order), tries again
after a growing interval, and mirrors them to a JSON-lines file, so a driver that is
killed while the server is away loses nothing (`load` queues them again, first).
An operation the server refuses is dropped, with its error, and the rest go on.
"""

import json
import logging
import time
from collections import deque
from typing import Any, Callable, Deque, Dict, List, Literal, Optional, Tuple, TypedDict

from .. import storage

logger = logging.getLogger(__name__)

# While the server is away the queue is tried again after RETRY_INTERVAL_S,
# doubled after each failure up to MAX_RETRY_INTERVAL_S: a server that hangs
# rather than refuses costs a request timeout per try.
RETRY_INTERVAL_S = 5.0
MAX_RETRY_INTERVAL_S = 60.0

OperationKind = Literal[
    "create_parent_run", "create_trial_run", "log_batch", "log_text", "set_terminated", "update_run", "tag_run_id"
]


class Operation(TypedDict, total=False):
    """One tracking write. `run` is a run id or a reference resolved when written."""

    op: OperationKind
    run: str
    name: str  # create_*: the run's name
    tags: Dict[str, str]  # create_parent_run, log_batch
    params: Dict[str, str]  # log_batch
    metrics: List[List[Any]]  # log_batch: [key, value, timestamp ms, step]
    text: str  # log_text
    path: str  # log_text: the artifact's path
    status: str  # set_terminated, update_run
    key: str  # tag_run_id: the tag ...
    target: str  # ... whose value is this reference's run id


class OperationQueue:
    """The pending operations of one tracker, mirrored to `pending_path` while its
    server is away. `target` names the server in log messages."""

    def __init__(self, target: str, pending_path: Optional[str] = None) -> None:
        self.target = target
        self.pending_path = pending_path
        self._queue: Deque[Operation] = deque()
        self._mirrored = False  # pending_path holds the queue (perhaps after operations already written)
        self._pending_file = False  # pending_path exists (written, or loaded from a previous driver)
        self._offline_since: Optional[float] = None
        self._next_attempt = 0.0
        self._retry_interval = RETRY_INTERVAL_S
        self._buffered_while_offline = 0
        self.dropped: List[Tuple[Operation, str]] = []  # operations the server refused, with its error

    def __len__(self) -> int:
        return len(self._queue)

    def append(self, op: Operation) -> None:
        """Queue an operation (and mirror it, while the file is the queue's copy)."""
        self._queue.append(op)
        if self._mirrored:
            path = self._pending_path()
            if storage.can_append(path):
                storage.append_text(path, json.dumps(op) + "\n")
            else:  # an object in object storage: written whole
                self._write_file()
        if self._offline_since is not None:
            self._buffered_while_offline += 1

    def flush(self, apply: Callable[[Operation], None], is_unreachable: Callable[[BaseException], bool]) -> bool:
        """Write the queued operations in order through `apply`; stop at the first one
        the server is not there for (tried again after the retry interval). True
        when nothing is pending."""
        if self._queue:
            if self._offline_since is not None and time.monotonic() < self._next_attempt:
                return False
            written = 0
            while self._queue:
                op = self._queue[0]
                try:
                    apply(op)
                except Exception as err:  # noqa: BLE001 - whatever the tracker raises must not reach Ray Tune
                    if is_unreachable(err):
                        self._went_offline(err, written)
                        return False
                    self.dropped.append((op, repr(err)))
                    logger.warning("the tracking server refused an operation, which is dropped (%s on %s): %r",
                                   op["op"], op["run"], err, exc_info=not isinstance(err, (LookupError, ValueError)))
                self._queue.popleft()
                written += 1
            if self._offline_since is not None:
                logger.warning(
                    "the tracking server %s is reachable again after %.0f s: wrote the %d operations buffered meanwhile",
                    self.target, time.monotonic() - self._offline_since, self._buffered_while_offline,
                )
                self._offline_since = None
                self._retry_interval = RETRY_INTERVAL_S
                self._buffered_while_offline = 0
        if self._pending_file:
            storage.delete(self._pending_path())
            self._pending_file = self._mirrored = False
        return True

    def retry_now(self) -> None:
        """Let the next flush try at once (the sweep's end does not wait for the interval)."""
        self._next_attempt = 0.0

    def save(self) -> None:
        """Write what is pending to pending_path (the sweep ends with the server away)."""
        self._write_file()

    def load(self) -> int:
        """Queue the operations a previous driver saved in pending_path (before
        anything queued since); returns how many."""
        if not self.pending_path or not storage.exists(self.pending_path):
            return 0
        ops = [json.loads(line) for line in storage.read_text(self.pending_path).splitlines() if line.strip()]
        self._queue.extendleft(reversed(ops))
        self._pending_file = True
        self._mirrored = False  # the file lacks what was queued before: rewritten on the next failure
        return len(ops)

    def _pending_path(self) -> str:
        """pending_path, once the queue has a file there (only with a pending_path)."""
        if self.pending_path is None:
            raise RuntimeError(f"the tracking queue of {self.target} has no pending_path, yet counts its file as written")
        return self.pending_path

    def _went_offline(self, err: BaseException, written: int) -> None:
        now = time.monotonic()
        if self._offline_since is None:
            self._offline_since = now
            self._buffered_while_offline = len(self._queue)
            logger.warning(
                "the tracking server %s cannot be reached (%s): tracking operations are buffered "
                "(%d pending) and written when it is back, tried again after %.0f s and less often after that%s",
                self.target, _first_line(err), len(self._queue), RETRY_INTERVAL_S,
                f", and kept in {self.pending_path}" if self.pending_path else "",
            )
        else:
            self._retry_interval = min(2 * self._retry_interval, MAX_RETRY_INTERVAL_S)
        self._next_attempt = now + self._retry_interval
        if written or not self._mirrored:
            self._write_file()

    def _write_file(self) -> None:
        """The queue, one JSON operation per line, replaced atomically (a driver
        killed while the server is away loses nothing)."""
        if not self.pending_path:
            return
        storage.write_text(self.pending_path, "".join(json.dumps(op) + "\n" for op in self._queue))
        self._mirrored = self._pending_file = True


def _first_line(err: BaseException) -> str:
    text = str(err).splitlines()[0] if str(err) else type(err).__name__
    return text[:300]
