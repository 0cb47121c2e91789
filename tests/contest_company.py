"""A small company counted by hand for the contest tests (Europe/Kyiv, USD).

Seven reps in two teams of different sizes: North (Anna, Boris, Chen, Gleb) and
South (Dana, Eve, Fedir). The contests run over two weeks, Monday 4 to Sunday 17
March 2024 (W1 = 4-10, W2 = 11-17), or over March. The company's holiday is
8 March (a Friday), so March has 20 working days and W1 has 4.

Counted inside 4-17 March (company time; calls are outbound):

rep     team   calls W1+W2  meetings W1+W2  won W1+W2 (revenue)     points 1/5/20
Anna    North  5+3 = 8      1+1 = 2         1+0 (1000)               8+10+20 = 38
Boris   North  2+6 = 8      0+2 = 2         0+1 (2000)               8+10+20 = 38
Chen    North  6+4 = 10     1+0 = 1         1+0 (1500)              10+ 5+20 = 35
Gleb    North  4+4 = 8      0+1 = 1         0                        8+ 5    = 13
Dana    South  12+8 = 20    2+1 = 3         1+1 (3000 + 500)        20+15+40 = 75
Eve     South  2+2 = 4      0               0                        4
Fedir   South  0            0               0                        0

Points by week (for head to head): W1 Anna 5+5+20 = 30, Boris 2, Chen 6+5+20 = 31,
Dana 12+10+20 = 42, Eve 2; W2 Anna 3+5 = 8, Boris 6+10+20 = 36, Chen 4, Dana
8+5+20 = 33, Eve 2.

The edges, each on purpose:
- Eve's call at 2024-03-03 22:30 UTC is 00:30 on 4 March in Kyiv: inside (one of her
  two W1 calls); her call at 2024-03-17 22:30 UTC is 00:30 on 18 March: outside;
  the one at 2024-03-03 21:30 UTC is 23:30 on 3 March: outside.
- Anna's inbound call in W1 is not a call made.
- Fedir's calls on 1 and 18 March lie outside the two weeks: he is not active in them.

March revenue (won, by close day in Kyiv): Anna 1000 + 2000 (25 March) = 3000,
Boris 2000, Chen 1500 + 500 (1 March) = 2000, Dana 3500, Eve 0: her 900 closed at
2024-03-31 21:30 UTC, which is 00:30 on 1 April in Kyiv (summer time began that
night: UTC+3).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from saleskpi.domain.settings import Settings, save_workspace_settings

REPS = """id,name,team
a1,Anna Avery,North
b1,Boris Bell,North
c1,Chen Cole,North
g1,Gleb Gray,North
d1,Dana Dale,South
e1,Eve Egan,South
f1,Fedir Fox,South
"""
# (rep, kind, week, count): generated on the week's working days at 10:00 and after.
GENERATED = [
    ("a1", "call", 1, 5), ("a1", "call", 2, 3), ("a1", "meeting", 1, 1), ("a1", "meeting", 2, 1),
    ("b1", "call", 1, 2), ("b1", "call", 2, 6), ("b1", "meeting", 2, 2),
    ("c1", "call", 1, 6), ("c1", "call", 2, 4), ("c1", "meeting", 1, 1),
    ("g1", "call", 1, 4), ("g1", "call", 2, 4), ("g1", "meeting", 2, 1),
    ("d1", "call", 1, 12), ("d1", "call", 2, 8), ("d1", "meeting", 1, 2), ("d1", "meeting", 2, 1),
    ("e1", "call", 1, 1), ("e1", "call", 2, 2),
]
EDGES = [
    "X1,call,e1,2024-03-03T22:30:00+00:00,,out",
    "X2,call,e1,2024-03-17T22:30:00+00:00,,out",
    "X3,call,e1,2024-03-03T21:30:00+00:00,,out",
    "X4,call,a1,2024-03-05 11:00:00,,in",
    "X5,call,f1,2024-03-01 10:00:00,,out",
    "X6,call,f1,2024-03-18 10:00:00,,out",
]
DEALS = """id,rep_id,status,created_at,amount,currency,closed_at
DA1,a1,won,2024-02-20 09:00:00,1000,USD,2024-03-05 12:00:00
DC1,c1,won,2024-02-20 09:00:00,1500,USD,2024-03-06 12:00:00
DD1,d1,won,2024-02-20 09:00:00,3000,USD,2024-03-07 12:00:00
DB1,b1,won,2024-02-20 09:00:00,2000,USD,2024-03-12 12:00:00
DD2,d1,won,2024-02-20 09:00:00,500,USD,2024-03-14 12:00:00
DA2,a1,won,2024-02-20 09:00:00,2000,USD,2024-03-25 12:00:00
DC2,c1,won,2024-02-20 09:00:00,500,USD,2024-03-01 12:00:00
DE1,e1,won,2024-02-20 09:00:00,900,USD,2024-03-31T21:30:00+00:00
"""
WEEK_DAYS = {1: [dt.date(2024, 3, d) for d in (4, 5, 6, 7, 8)],
             2: [dt.date(2024, 3, d) for d in (11, 12, 13, 14, 15)]}
HOLIDAYS = [dt.date(2024, 3, 8)]


def activities(extra: tuple[str, ...] = ()) -> str:
    lines = ["id,type,rep_id,occurred_at,lead_id,direction", *EDGES, *extra]
    for rep, kind, week, count in GENERATED:
        for i in range(count):
            day = WEEK_DAYS[week][i % 5]
            lines.append(f"{rep}{kind[0]}{week}_{i},{kind},{rep},{day} 10:{i:02d}:00,,"
                         f"{'out' if kind == 'call' else ''}")
    return "\n".join(lines) + "\n"


def write_company(root: Path, extra: tuple[str, ...] = ()) -> tuple[Path, Path]:
    """The CSV files in ``root/data`` and a Europe/Kyiv workspace in ``root/ws``."""
    data = root / "data"
    data.mkdir(parents=True, exist_ok=True)
    for name, text in (("reps", REPS), ("activities", activities(extra)), ("deals", DEALS)):
        (data / f"{name}.csv").write_text(text, encoding="utf-8")
    workspace = root / "ws"
    if not workspace.exists():
        save_workspace_settings(Settings(workspace=workspace), timezone="Europe/Kyiv",
                                currency="USD",
                                holidays=[d.isoformat() for d in HOLIDAYS])
    return data, workspace
