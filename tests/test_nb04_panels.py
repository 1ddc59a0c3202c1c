"""Notebook 04's panels: set the sliders, check the numbers against independent formulas;
and the static figures build."""

import math

import pytest
import torch
from matplotlib.figure import Figure

from rlviz.experiments import kl as kle
from rlviz.plots import kl as klp
from rlviz.widgets import PANEL_REGISTRY
from rlviz.widgets.kl import GAUSSIAN_POOL, gaussian_kl_panel, token_kl_panel


def test_panels_are_registered_for_notebook_04():
    assert PANEL_REGISTRY["kl_gaussian"] == (gaussian_kl_panel, "04")
    assert PANEL_REGISTRY["kl_tokens"] == (token_kl_panel, "04")


def test_gaussian_panel_numbers_follow_the_sliders():
    panel = gaussian_kl_panel()
    pool = torch.randn(GAUSSIAN_POOL, generator=torch.Generator().manual_seed(0),
                       dtype=torch.float64)
    for mu, n in [(0.5, 1000), (0.05, 10), (2.0, GAUSSIAN_POOL), (1.25, 4321)]:
        panel.controls["mu"].value = mu
        panel.controls["n_samples"].value = n
        values = panel.values
        assert panel.errors == []
        true_kl = mu * mu / 2
        assert values["true KL = mu^2/2"] == pytest.approx(true_kl)
        log_r = [mu * x - mu * mu / 2 for x in pool[:n].tolist()]
        k1 = [-s for s in log_r]
        k3 = [math.exp(s) - 1 - s for s in log_r]
        assert values["k1 mean"] == pytest.approx(sum(k1) / n, rel=1e-9, abs=1e-12)
        assert values["k3 mean"] == pytest.approx(sum(k3) / n, rel=1e-9, abs=1e-12)
        assert values["k1 share < 0"] == sum(v < 0 for v in k1) / n
        assert values["k2 share < 0"] == 0 and values["k3 share < 0"] == 0
        assert values["k1 stdev/KL (exact)"] == pytest.approx(2 / mu)
        assert values["k2 bias/KL (exact)"] == pytest.approx(mu * mu / 4)
        assert values["k3 stdev/KL (exact)"] == pytest.approx(
            math.sqrt(math.exp(mu * mu) - 1 - mu * mu) / true_kl, rel=1e-9)
    assert panel.image.value[:4] == b"\x89PNG"


def test_token_panel_numbers_follow_the_sliders():
    panel = token_kl_panel()
    # reference and drift direction reimplemented from the seed (vocab 1000, ref_scale 2)
    gen = torch.Generator().manual_seed(0)
    z = 2.0 * torch.randn(1000, generator=gen, dtype=torch.float64)
    g = torch.randn(1000, generator=gen, dtype=torch.float64)
    ref = z.log_softmax(-1).tolist()

    panel.set(shift=0.0, temperature=1.0, samples_per_step=16)
    assert panel.values["exact KL(pi||ref)"] == pytest.approx(0.0, abs=1e-15)
    assert panel.values["k1 on policy: mean"] == 0.0
    assert panel.values["k1 on uniform: mean"] == 0.0

    for shift, temperature, n in [(2.0, 0.7, 200), (0.3, 1.5, 1), (3.0, 2.0, 256)]:
        panel.set(shift=shift, temperature=temperature, samples_per_step=n)
        policy = ((z + shift * g) / temperature).log_softmax(-1).tolist()
        kl = sum(math.exp(a) * (a - b) for a, b in zip(policy, ref))
        forward = sum(math.exp(b) * (b - a) for a, b in zip(policy, ref))
        e_u = sum(a - b for a, b in zip(policy, ref)) / 1000
        assert panel.values["exact KL(pi||ref)"] == pytest.approx(kl, rel=1e-9)
        assert panel.values["exact KL(ref||pi)"] == pytest.approx(forward, rel=1e-9)
        assert panel.values["KL(U||ref) - KL(U||pi)"] == pytest.approx(e_u, rel=1e-9)
        # 200 steps of n policy samples: the mean of the step means is within 5 SE of the KL
        mean, stdev = panel.values["k1 on policy: mean"], panel.values["k1 on policy: stdev"]
        assert abs(mean - kl) < 5 * stdev / math.sqrt(200)
        mean, stdev = panel.values["k3 on policy: mean"], panel.values["k3 on policy: stdev"]
        assert abs(mean - kl) < 5 * stdev / math.sqrt(200)
    assert panel.errors == []


def test_static_figures_build():
    pool = torch.randn(500, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    figures = [klp.plot_gaussian_estimators(kle.gaussian_panel_data(pool, 0.3, 400))]
    result = kle.token_experiment(vocab_size=50, samples_per_step=8, n_steps=20)
    figures.append(klp.plot_token_estimators(kle.token_panel_data(result, 8)))
    policy, ref = kle.token_distributions(20, 0.5)
    figures.append(klp.plot_expected_gradients(kle.expected_gradients(policy, ref),
                                               kle.gradient_agreement([0.1, 1.0])))
    figures.append(klp.plot_kl_placement(kle.kl_placement_batch()))
    ref, reward = kle.toy_bandit()
    trained = {k: kle.train_toy_policy(ref, reward, 0.1, k, steps=5) for k in ("k1", "k2")}
    figures.append(klp.plot_tradeoff(kle.beta_sweep(ref, reward, [0.1, 1.0]), trained, 0.1))
    runs = {"a": kle.adaptive_kl_run(ref, reward, iterations=5)}
    figures.append(klp.plot_adaptive_kl(runs, 0.5, 0.3))
    figures.append(klp.plot_demo_kl(kle.demo_kl_trace(steps=2, vocab_size=64)))
    assert all(isinstance(fig, Figure) and fig.axes for fig in figures)


def test_static_figure_review_fixes():
    pool = torch.randn(2000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    fig = klp.plot_gaussian_estimators(kle.gaussian_panel_data(pool, 0.3, 400), dpi=100)
    assert fig.dpi == 100
    assert {"density", "running average"} <= {t.get_text() for t in fig.texts}
    ref, reward = kle.toy_bandit()
    sweep = kle.beta_sweep(ref, reward, [0.05, 0.1, 1.0, 3.0])
    trained = {"k2": kle.train_toy_policy(ref, reward, 0.1, "k2", steps=5, lr=0.2)}
    ax = klp.plot_tradeoff(sweep, trained, 0.1).axes[0]
    labels = [t for t in ax.texts if t.get_text().startswith("beta=")]
    # the leftmost point is labelled on its right, the others on their left
    assert [t.get_horizontalalignment() for t in labels] == ["right", "right", "right", "left"]
    agreement = kle.gradient_agreement([0.1, 1.0])
    policy, ref_logp = kle.token_distributions(vocab_size=20, shift=0.5)
    right = klp.plot_expected_gradients(kle.expected_gradients(policy, ref_logp),
                                        agreement).axes[1]
    assert right.get_xlim()[1] == pytest.approx(3 * max(agreement["kl"]))
