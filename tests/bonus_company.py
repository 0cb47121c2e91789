"""A hand-counted company for the bonus tests, and its bonus_plans.yaml.

Team North: r1 Alice, r2 Bob; team South: r3 Carol. Europe/Kyiv, amounts in UAH.
Every deal closes at 12:00 Kyiv time (well inside its day and month).

Won deals (revenue):

    month     r1 Alice              r2 Bob               r3 Carol
    2025-05   5 × 10 000 = 50 000   3 × 15 000 = 45 000  4 × 5 000 = 20 000
    2025-06  10 × 13 000 = 130 000  3 × 15 000 = 45 000  20 × 5 000 = 100 000
    2025-07   4 × 20 000 = 80 000   —                    —
    2025-08   6 × 15 000 = 90 000   2 × 20 000 = 40 000  25 × 5 000 = 125 000

(plus a lost deal of r1's in June, which counts nowhere). Average deal: r1 10 000 in
May, 13 000 in June (+30 %), 20 000 in July, 15 000 in August (−25 %); r3 5 000 every
month (+0 %); r2 15 000 in May and June (+0 %).

Revenue targets (monthly): r1 and r2 100 000 in June, July and August; r3 50 000.
r1 also has a quarterly revenue target for Q3 (not a month's: the monthly plans do not
use it).

r1's activity in May-July (the reverse planner's history for a what-if in August):
190 calls and 38 meetings, with 5 + 10 + 4 = 19 deals won for 260 000.
"""

from __future__ import annotations

from pathlib import Path

REPS = """id,name,team
r1,Alice,North
r2,Bob,North
r3,Carol,South
"""

WON: dict[str, dict[str, tuple[int, int]]] = {  # month -> rep -> (deals, amount each)
    "2025-05": {"r1": (5, 10_000), "r2": (3, 15_000), "r3": (4, 5_000)},
    "2025-06": {"r1": (10, 13_000), "r2": (3, 15_000), "r3": (20, 5_000)},
    "2025-07": {"r1": (4, 20_000)},
    "2025-08": {"r1": (6, 15_000), "r2": (2, 20_000), "r3": (25, 5_000)},
}

TARGETS = """kpi,period_start,period_end,value,rep_id,team
revenue,2025-06-01,2025-06-30,100000,r1,
revenue,2025-06-01,2025-06-30,100000,r2,
revenue,2025-06-01,2025-06-30,50000,r3,
revenue,2025-07-01,2025-07-31,100000,r1,
revenue,2025-07-01,2025-07-31,100000,r2,
revenue,2025-07-01,2025-07-31,50000,r3,
revenue,2025-08-01,2025-08-31,100000,r1,
revenue,2025-08-01,2025-08-31,100000,r2,
revenue,2025-08-01,2025-08-31,50000,r3,
revenue,2025-07-01,2025-09-30,1000,r1,
"""


def deals_csv() -> str:
    rows = ["id,rep_id,status,created_at,closed_at,amount,currency"]
    for month, reps in WON.items():
        for rep, (count, amount) in reps.items():
            for i in range(count):
                # Days 1-8 only: a what-if "as of 2025-08-11" sees every August deal.
                day = 1 + i % 8
                rows.append(f"D{len(rows)},{rep},won,2025-04-01 10:00:00,"
                            f"{month}-{day:02d} 12:00:00,{amount},UAH")
    rows.append(f"D{len(rows)},r1,lost,2025-04-01 10:00:00,2025-06-10 12:00:00,99000,UAH")
    return "\n".join(rows) + "\n"


def activities_csv() -> str:
    rows = ["id,type,rep_id,occurred_at,direction"]
    months = ("2025-05", "2025-06", "2025-07")
    for i in range(190):
        rows.append(f"A{len(rows)},call,r1,{months[i % 3]}-{1 + i % 28:02d} 10:00:00,out")
    for i in range(38):
        rows.append(f"A{len(rows)},meeting,r1,{months[i % 3]}-{1 + i % 28:02d} 15:00:00,")
    return "\n".join(rows) + "\n"


PLANS_YAML = """\
plans:
  - name: reps_monthly
    title: Sales reps, monthly
    who: all
    period: month
    currency: UAH
    versions:
      - effective_from: 2025-01-01
        cap: 14200
        components:
          - name: revenue_plan
            kpi: revenue
            measure: attainment
            target_bonus: 10000
            tier_mode: marginal
            tiers:
              - {from: 0, rate: 0.5}
              - {from: 80%, rate: 1}
            accelerator: {above: 100, multiplier: 1.5}
            decelerator: {below: 50%, multiplier: 0}
            cap: 14000
        one_offs:
          - {name: ten_deals, kpi: deals_won, at_least: 10, amount: 500}
          - {name: bigger_check, kpi: average_deal_size, growth_at_least: 15%, amount: 300}
      - effective_from: 2025-07-15
        cap: 25000
        components:
          - name: revenue_plan
            kpi: revenue
            target_bonus: 12000
            tier_mode: retroactive
            tiers:
              - {from: 0, rate: 0.5}
              - {from: 80, rate: 1}
            accelerator: {multiplier: 2}
            decelerator: {below: 50, multiplier: 0.5}
            cap: 20000
        one_offs:
          - {name: ten_deals, kpi: deals_won, at_least: 10, amount: 500}
          - {name: bigger_check, kpi: average_deal_size, growth_at_least: 15%, amount: 300}
  - name: north_deals
    who: team
    teams: [North]
    period: month
    currency: UAH
    versions:
      - effective_from: 2025-01-01
        components:
          - name: per_deal
            kpi: deals_won
            measure: value
            tiers:
              - {from: 0, rate: 200}
              - {from: 5, rate: 300}
"""


def write_company(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in {"reps.csv": REPS, "deals.csv": deals_csv(),
                       "activities.csv": activities_csv(), "targets.csv": TARGETS}.items():
        (folder / name).write_text(text, encoding="utf-8", newline="")
    return folder
