"""The cold-cache comparison from records: medians per kind of cold start, the conclusion's sentence, the
plot, and the benchmark's refusal to run the scenario without a seeder to empty the cache."""

from __future__ import annotations

import pytest
from matplotlib.colors import to_hex

from helpers import bench, cold_cache, findings, plots


def rec(scenario, init, torch, cached=None, **extra):
    return {
        "scenario": scenario,
        "index": 0,
        "client_ms": (init or 0.0) + 300.0,
        "duration_ms": 250.0,
        "billed_ms": (init or 0.0) + 251.0,
        "init_ms": init,
        "cold": True,
        "init_in_duration": False,
        "init_total_ms": (init or 0.0) - 40.0,
        "init_runtime_start_ms": 60.0,
        "init_import_torch_ms": torch,
        "init_import_pil_ms": 30.0,
        "init_load_weights_ms": 150.0,
        "init_first_forward_ms": 90.0,
        "init_type": "on-demand",
        "error": None,
        "cached_after_evict_bytes": cached,
        **extra,
    }


WARM = [rec("cold", 2400.0, 2000.0), rec("cold", 2500.0, 2100.0), rec("cold", 2600.0, 2200.0)]
COLD = [rec(bench.COLD_CACHE, 3000.0, 2400.0, 0), rec(bench.COLD_CACHE, 3100.0, 2500.0, 0)]


def test_compare_takes_the_median_init_and_phases_of_each_kind_of_cold_start():
    both = cold_cache.compare([*WARM, *COLD, rec("warm", 20.0, None, cold=False)])
    assert set(both) == {"cold", bench.COLD_CACHE}
    assert (
        both["cold"]["n"] == 3 and both["cold"]["init"] == 2500.0 and both["cold"]["import_torch"] == 2100.0
    )
    assert (
        both[bench.COLD_CACHE]["init"] == 3050.0 and both[bench.COLD_CACHE]["cached_after_evict_bytes"] == 0
    )


def test_a_failed_or_long_init_is_compared_by_what_it_took():
    long = rec(bench.COLD_CACHE, None, 9000.0, 0, init_in_duration=True, init_total_ms=10_500.0)
    failed = rec(bench.COLD_CACHE, 1.0, 1.0, 0, error="Runtime.ExitError: boom")
    both = cold_cache.compare([*WARM, long, failed])
    assert both[bench.COLD_CACHE]["n"] == 1 and both[bench.COLD_CACHE]["init"] == 10_500.0


def test_the_conclusion_states_what_a_first_read_cost_and_what_aws_does():
    line = cold_cache.conclusion_line([*WARM, *COLD])
    assert "took 3,050 ms to init at the median (n=2; `import torch` 2,450 ms)" in line
    assert "against 2,500 ms with them cached (n=3; `import torch` 2,100 ms)" in line
    assert "a first read of the bundle from this disk cost 550 ms" in line and "understatement" not in line
    assert "reads it from EFS, over the network" in line
    assert line in findings.conclusion([*WARM, *COLD], 2048, "x86_64", 1).splitlines()


def test_the_conclusion_says_when_pages_stayed_cached_or_the_difference_is_noise():
    kept = [rec(bench.COLD_CACHE, 2520.0, 2110.0, 175_000_000)]
    line = cold_cache.conclusion_line([*WARM, *kept])
    assert (
        "no difference measurable above the noise (175 MB stayed cached, mapped by environments still" in line
    )
    slower = cold_cache.conclusion_line([*WARM, rec(bench.COLD_CACHE, 3000.0, 2400.0, 175_000_000)])
    assert (
        "cost 500 ms (an understatement: 175 MB stayed cached, mapped by environments still alive)" in slower
    )


def test_no_conclusion_line_without_both_kinds():
    assert cold_cache.conclusion_line(WARM) is None
    assert "Cold page cache" not in findings.conclusion(WARM, 2048, "x86_64", 1)


def test_the_plot_puts_both_kinds_side_by_side_phase_by_phase(tmp_path):
    fig = plots.cold_cache_phases([*WARM, *COLD], tmp_path / "cold_cache.png")
    (ax,) = fig.axes
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == [
        "whole init",
        "runtime start",
        "import torch",
        "import PIL",
        "load weights",
        "first forward",
    ]
    bars = ax.patches
    assert len(bars) == 12
    warm_torch, cold_torch = bars[2].get_width(), bars[6 + 2].get_width()
    assert (warm_torch, cold_torch) == (2100.0, 2450.0)
    assert to_hex(bars[0].get_facecolor(), keep_alpha=False) == plots.SCENARIO_COLOURS["cold"].lower()
    assert (tmp_path / "cold_cache.png").stat().st_size > 0
    assert not fig.texts  # nothing stayed cached: no footnote


def test_the_plot_notes_pages_that_stayed_cached_and_refuses_one_kind_alone():
    fig = plots.cold_cache_phases([*WARM, rec(bench.COLD_CACHE, 3000.0, 2400.0, 175_000_000)])
    assert "175 MB stayed cached" in fig.texts[0].get_text()
    with pytest.raises(ValueError, match="need successful 'cold' and 'cold \\(cold cache\\)' cold starts"):
        plots.cold_cache_phases(WARM)


def test_the_benchmark_needs_a_seeder_for_cold_cache_starts():
    with pytest.raises(ValueError, match=r"needs seeder=, the seeder function's name"):
        bench.run("f", {}, bench.BenchParams(cold_cache=1), show_progress=False)
    assert bench.BenchParams(cold_cache=2).total == bench.BenchParams().total + 2


def test_the_table_shows_each_cold_cache_start_in_megabytes():
    text = cold_cache.table(
        [
            *WARM,
            rec(
                bench.COLD_CACHE,
                3000.0,
                2400.0,
                175_451_949,
                evicted_bytes=646_399_533,
                read_bytes=331_500_000,
                read_files=789,
            ),
        ]
    )
    assert text.splitlines()[0] == (
        "| index | init (ms) | import torch (ms) | evicted (MB, bytecode included) | read by the cold start (MB) "
        "| files read | still cached (MB) | error |"
    )
    assert "| 3,000.0 | 2,400.0 | 646.4 | 331.5 | 789 | 175.5 | – |" in text and len(text.splitlines()) == 3
    assert cold_cache.table(WARM) == "_No cold-cache starts in these records._"
