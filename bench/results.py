"""Writing a benchmark's section of bench/RESULTS.md (between its markers) and describing the machine."""

import datetime
import os
import platform
import re
import statistics
from pathlib import Path
from typing import List

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def machine() -> str:
    cpu = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        match = re.search(r"model name\s*:\s*(.+)", cpuinfo.read_text())
        cpu = match.group(1).strip() if match else ""
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB RAM, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def spread(scores: List[float]) -> float:
    """The sample standard deviation of scores in [0, 1], in points (0 for one score)."""
    return statistics.stdev(s * 100 for s in scores) if len(scores) > 1 else 0.0


def mean_spread(scores: List[float]) -> str:
    """Scores in [0, 1] as "mean ± sample standard deviation", in points."""
    return f"{statistics.mean(scores) * 100:.2f} ± {spread(scores):.2f}"


def today() -> str:
    return datetime.date.today().isoformat()


def write_section(key: str, lines: List[str]) -> None:
    """Replace (or append) the section between <!-- key:start --> and <!-- key:end -->."""
    start, end = f"<!-- {key}:start -->", f"<!-- {key}:end -->"
    block = "\n".join([start, *lines, end]) + "\n"
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n\nEach section is written by its benchmark script.\n\n"
    if start in text:
        text = re.sub(re.escape(start) + r".*?" + re.escape(end) + r"\n", lambda m: block, text, flags=re.S)
    else:
        text += "\n" + block
    RESULTS.write_text(text)
