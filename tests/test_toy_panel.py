"""The Run-button training panel of notebook 06."""

import math

from rlviz.trainer import TrainConfig, train
from rlviz.widgets import PANEL_REGISTRY
from rlviz.widgets.training import training_panel


def test_building_the_panel_does_not_train():
    panel = training_panel()
    assert panel.values == {"status": "press Run to train"}
    assert panel.history == [] and panel.run_button is not None
    assert "training" in PANEL_REGISTRY and PANEL_REGISTRY["training"][1] == "06"


def test_run_trains_with_the_controls_and_shows_the_numbers():
    initial = train(TrainConfig(steps=2, samples_per_step=32, minibatches=2), progress=False)
    panel = training_panel(initial=initial)
    assert panel.values["final reward (sampled)"] == initial.metrics[-1]["reward"]

    panel.set(algo="dapo", task="sort", steps=3, samples_per_step=32, ent_coef=0.02,
              eps_high=0.3, seed=4)  # set() refreshes once, like a click
    expected = train(TrainConfig(algo="dapo", task="sort", steps=3, samples_per_step=32,
                                 ent_coef=0.02, eps_high=0.3, seed=4),
                     progress=False).metrics
    values = panel.values
    assert values["algo"] == "dapo" and values["steps run"] == 3
    assert values["final reward (sampled)"] == expected[-1]["reward"]
    assert values["final entropy"] == expected[-1]["entropy"]
    assert values["eps_low / eps_high"] == "0.2 / 0.3"
    assert len(panel.history) == 2
    # the curves: this run in colour, the previous (initial) run in grey
    drawing_lines = panel.figure.axes[0].get_lines()
    lengths = sorted(len(line.get_xdata()) for line in drawing_lines[:2])
    assert lengths == [2, 3]

    panel.set(eps_high=0.0)  # 0 = the algorithm's own default
    assert panel.values["eps_low / eps_high"] == "0.2 / 0.28"
    assert not math.isnan(panel.values["final reward (greedy)"])
    assert panel.errors == []
    # the same settings again come from the cache: the very same result object
    runs_before = len(panel.history)
    panel.set(eps_high=0.3)
    assert panel.history[-1] is panel.history[runs_before - 2]
