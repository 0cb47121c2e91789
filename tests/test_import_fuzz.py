"""Generated malformed folders through the real import into a real workspace (issue 16).

A bounded run of tests/import_fuzz.py's cases (the same seed every time, so CI is
stable); ``benchmarks/fuzz_imports.py`` runs 10,000 and prints the counts that
SECURITY.md quotes. Every run must end in an import or a clear refusal, within 10 s,
a refusal must leave stored data as it was, and an import must store exactly what
the file meant.
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, Phase, given, settings

from tests.import_fuzz import Case, Fuzzer, cases

EXAMPLES = 50


def test_generated_bad_files_are_refused_cleanly_or_imported_exactly(tmp_path: Path) -> None:
    fuzzer = Fuzzer(tmp_path)

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              phases=[Phase.generate],
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                     HealthCheck.large_base_example])
    @given(cases())
    def run(case: Case) -> None:
        fuzzer.run(case)

    run()
    tally = fuzzer.tally
    assert tally.runs >= EXAMPLES
    assert not tally.failures, tally.examples
    # The run covered good folders and most kinds of defect, both imported and refused.
    assert tally.accepted and tally.refused
    assert len(tally.by_defect) >= 8, tally.by_defect
