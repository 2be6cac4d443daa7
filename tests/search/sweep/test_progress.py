"""The live progress table of a sweep (search/sweep/progress.py) in real sweeps: the
session's TPE + ASHA sweep through the Python API (its table lines
collected) and the session's CLI sweep (its stdout)."""

import re
from typing import List, Tuple

from search.sweep.progress import COLUMNS, format_row

HEADER = format_row(COLUMNS)
ROW = re.compile(r"^\s*(\d+):(\d\d)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\S+)\s+(\d+)$")


def _rows(lines: List[str]) -> List[Tuple]:
    """(elapsed s, running, finished, pruned, failed, best, trials/h) per table row after the header."""
    start = lines.index(HEADER)
    rows = []
    for line in lines[start + 1 :]:
        match = ROW.match(line)
        if match:
            m, s, running, finished, pruned, failed, best, pace = match.groups()
            rows.append((int(m) * 60 + int(s), int(running), int(finished), int(pruned), int(failed), best, int(pace)))
    return rows


def _statuses(client, parent_run_id: str) -> List[str]:
    parent = client.get_run(parent_run_id)
    children = client.search_runs([parent.info.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{parent_run_id}'")
    return [c.data.tags["archsweep.status"] for c in children]


def test_the_table_follows_a_sweep(finished_sweep):
    lines = finished_sweep.live_table
    assert lines.count(HEADER) == 1 and lines[0] == HEADER
    rows = _rows(lines)
    assert len(rows) >= 3  # at least the start, a change and the end
    assert all(r[1] <= finished_sweep.settings.max_concurrent for r in rows)
    ended = [r[2] + r[3] + r[4] for r in rows]
    assert ended == sorted(ended) and [r[0] for r in rows] == sorted(r[0] for r in rows)
    # The last row is the sweep's outcome, as MLflow records it.
    statuses = _statuses(finished_sweep.server.client(), finished_sweep.result.parent_run_id)
    last = rows[-1]
    assert last[1:5] == (0, statuses.count("finished"), statuses.count("pruned"), statuses.count("failed"))
    best = max(t.best_score for t in finished_sweep.result.trials if t.status == "finished")
    assert last[5] == f"{best * 100:.2f}"
    assert last[6] > 0
    # The best score so far never goes down once shown.
    shown = [float(r[5]) for r in rows if r[5] != "-"]
    assert shown == sorted(shown)


def test_the_cli_shows_the_compact_table_not_tunes(cli_sweep):
    lines = cli_sweep.stdout.splitlines()
    assert HEADER in lines
    for ray_output in ("Configuration for experiment", "Trial status", "Trial name", "View detailed results"):
        assert ray_output not in cli_sweep.stdout
    table = lines[lines.index(HEADER) :]
    rows = _rows(lines)
    assert rows[-1][1:5] == (0, 2, 0, 0)
    assert all(len(line) <= len(HEADER) for line in table[: len(rows) + 1] if ROW.match(line))
