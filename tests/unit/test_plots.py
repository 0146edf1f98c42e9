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


def test_latency_by_scenario_orders_scenarios_and_leaves_out_failed_invocations():
    fig = plots.latency_by_scenario(synthetic_records())
    labels = [tick.get_text() for tick in fig.axes[0].get_xticklabels()]
    assert labels == [
        "cold\n(n=6)",
        "warm\n(n=20)",
        "provisioned\n(n=20)",
        "burst-on-demand\n(n=21)",
        "burst-provisioned\n(n=20)",
    ]
    assert max(max(c.get_offsets()[:, 1]) for c in fig.axes[0].collections) < 30000


def test_time_breakdown_stacks_median_init_handler_and_overhead():
    records = [
        _record("cold", 1500, 200, 1200),  # overhead 100
        _record("cold", 1700, 220, 1300),  # overhead 180
        _record("cold", 1600, 210, 1250),  # overhead 140
        _record("warm", 40, 18),  # overhead 22
        _record("warm", 30, 17),  # overhead 13
    ]
    fig = plots.time_breakdown(records)
    (ax,) = fig.axes
    assert ax.get_title() == "Where the time goes"
    assert ax.get_ylabel() == "median time per invocation (ms)"
    init, handler, overhead = ax.containers
    assert [bar.get_height() for bar in init] == [1250, 0]
    assert [bar.get_height() for bar in handler] == [210, 17.5]
    assert [bar.get_height() for bar in overhead] == [140, 17.5]
    assert [bar.get_y() for bar in overhead] == [1460, 17.5]
    assert [text.get_text() for text in ax.get_legend().get_texts()] == [
        "init (Init Duration)",
        "handler (Duration)",
        "overhead (client - both)",
    ]
    annotations = [child.get_text() for child in ax.texts]
    assert annotations == ["p50 client\n1,600 ms", "p50 client\n35.0 ms"]


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
    breakdown_ticks = plots.time_breakdown(records).axes[0].get_xticklabels()
    for index, scenario in enumerate(["cold", "warm", "provisioned", "burst-on-demand", "burst-provisioned"]):
        expected = plots.SCENARIO_COLOURS[scenario].lower()
        assert to_hex(scatter[index].get_facecolor()[0], keep_alpha=False) == expected
        assert to_hex(cdf_lines[index].get_color()) == expected
        assert to_hex(breakdown_ticks[index].get_color()) == expected
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
    _saved_png(tmp_path, "cost.png")


def test_cost_vs_rate_says_so_when_provisioned_never_breaks_even():
    fig = plots.cost_vs_rate(10, 1024, billed_ms_provisioned=100)
    assert [text.get_text() for text in fig.axes[0].texts] == [
        "no break-even: provisioned never costs less here"
    ]


def test_plotting_only_failed_invocations_is_a_clear_error():
    with pytest.raises(ValueError, match="No successful invocations"):
        plots.latency_cdf([_record("warm", 10, 5, error="Unhandled")])


def test_predictions_plot_shows_each_class_and_flags_offline_weights(tmp_path):
    from matplotlib import cbook

    image = cbook.get_sample_data("grace_hopper.jpg").read()
    result = {
        "predictions": [
            {"label": "military uniform", "probability": 0.8},
            {"label": "suit", "probability": 0.1},
        ],
        "model": {"weights_source": "seeded-random:0"},
    }
    fig = plots.predictions(image, result, tmp_path / "p.png")
    labels = [t.get_text() for t in fig.axes[1].get_yticklabels()]
    assert labels == ["suit", "military uniform"]
    assert "NOT meaningful" in fig._suptitle.get_text()
    assert (tmp_path / "p.png").stat().st_size > 1000
