"""Processes on this machine (psutil): find a process tree or group and stop it by
PID. For the test fixtures and benchmarks that start real Ray nodes and servers and
must stop exactly those (never `ray stop --force`, which stops every Ray process on
the machine, nor a kill by name)."""

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Set

import psutil


@dataclass
class Proc:
    pid: int
    ppid: int
    pgid: int
    state: str  # psutil's status ("zombie", "running", ...)
    cmdline: str


def processes() -> Dict[int, Proc]:
    """Every process now, by pid (one that exits while being read is left out)."""
    table: Dict[int, Proc] = {}
    for proc in psutil.process_iter(["pid", "ppid", "status", "cmdline"]):
        try:
            info = proc.info
            table[info["pid"]] = Proc(info["pid"], info["ppid"], os.getpgid(info["pid"]), info["status"],
                                      " ".join(info["cmdline"] or []).strip())
        except (psutil.Error, ProcessLookupError):
            continue
    return table


def with_descendants(roots: Iterable[int], table: Optional[Dict[int, Proc]] = None) -> Set[int]:
    table = table if table is not None else processes()
    found = set(p for p in roots if p in table)
    grew = True
    while grew:
        grew = False
        for proc in table.values():
            if proc.ppid in found and proc.pid not in found:
                found.add(proc.pid)
                grew = True
    return found


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _signal(pids: Iterable[int], sig: int) -> List[int]:
    """Send sig to each pid but our own (gone ones are skipped); the pids it was meant for."""
    pids = [p for p in pids if p != os.getpid()]
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
    return pids


def stop_pids(pids: Iterable[int], grace: float = 10.0) -> List[int]:
    """SIGTERM, then SIGKILL what is still there after `grace` seconds; the pids that needed SIGKILL."""
    pids = _signal(pids, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.2)
    killed = []
    for pid in pids:
        if alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            except ProcessLookupError:
                pass
    return killed


def kill_pids(pids: Iterable[int], wait: float = 10.0) -> None:
    """SIGKILL and wait (bounded) until they are gone."""
    pids = _signal(pids, signal.SIGKILL)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.1)


def stop_process_group(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """Stop a process started with start_new_session=True and everything in its group."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            proc.poll()  # reap the leader
            if not _group_alive(proc.pid):
                break
            time.sleep(0.2)
        if not _group_alive(proc.pid):
            break
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass


def _group_alive(pgid: int) -> bool:
    return any(p.pgid == pgid and p.state != psutil.STATUS_ZOMBIE for p in processes().values())
