"""What the whole machine is doing, so a benchmark can report how busy other processes kept it."""

from __future__ import annotations

import os
from pathlib import Path


def machine_busy_s() -> float:
    """CPU seconds every process of the machine has used (Linux /proc/stat), or 0."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
