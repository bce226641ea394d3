"""The plots the examples and benchmarks draw: real PNG files with matplotlib, and a clear hint
(no failure) without it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from examples import plots

PNG = b"\x89PNG\r\n\x1a\n"


def draw_all(where: Path) -> list[Path | None]:
    return [
        plots.threshold_curve(where / "curve.png", [0.3, 0.6, 0.9], [0.01, 0.1, 0.5], [0.968, 0.981, 0.979], 0.6,
                              edge_accuracy=0.97, cloud_accuracy=0.979),
        plots.per_round(where / "rounds.png", {"test": [0.8, 0.9, None, 0.95]}, "FL", rounds=[1, 2, 3, 4]),
        plots.task_matrix(where / "matrix.png", [[0.1, 0.0], [0.9, 0.2], [0.9, 0.8]], ["b", "c"],
                          ["a only", "+ b", "+ c"]),
    ]


def test_each_plot_is_a_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    written = draw_all(tmp_path / "nested")
    assert written == [tmp_path / "nested" / n for n in ("curve.png", "rounds.png", "matrix.png")]
    for path in written:
        assert path is not None and path.read_bytes()[:8] == PNG and path.stat().st_size > 5000


def test_without_matplotlib_the_plots_are_skipped_saying_how_to_get_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` raises ImportError
    assert draw_all(tmp_path) == [None, None, None]
    out = capsys.readouterr().out
    assert out.count("matplotlib is not installed; pip install 'sedna-py[plots]'") == 3
    assert list(tmp_path.iterdir()) == []


def test_the_examples_plots_go_to_the_state_dir_unless_told(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SEDNA_PLOTS_DIR", raising=False)
    assert plots.plots_dir() == Path(".sedna") / "plots"
    monkeypatch.setenv("SEDNA_PLOTS_DIR", "/somewhere/else")
    assert plots.plots_dir() == Path("/somewhere/else")
