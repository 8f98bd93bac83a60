"""Chapter 7's trial data: shipped in scikit-survival, coded the way the loader says."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sksurv", reason="scikit-survival (chapter 7's data) is not installed")

from medai_lessons.data import REGISTRY, load_dataset, load_survival_table  # noqa: E402
from medai_lessons.data.survival import SURVIVAL_NAMES  # noqa: E402

# patients, events, treated, as the trials' data sets are documented (scikit-survival's
# docstrings and the papers in the registry)
KNOWN = {"actg320": (1151, 96, 574), "veterans_lung": (137, 128, 68), "gbsg2": (686, 299, 246)}


@pytest.mark.parametrize("name", SURVIVAL_NAMES)
def test_every_trial_is_registered_with_a_citation_and_licence(name):
    info = REGISTRY[name]
    assert info.kind == "package" and not info.downloadable
    assert "doi.org" in info.citation and "scikit-survival" in info.license


@pytest.mark.parametrize("name", SURVIVAL_NAMES)
def test_the_loader_gives_numeric_covariates_time_event_and_arm(name, capsys):
    ds = load_dataset(name)
    assert "REAL data" in capsys.readouterr().out
    n, events, treated = KNOWN[name]
    assert (len(ds.frame), int(ds.event.sum()), int(ds.treated.sum())) == (n, events, treated)
    assert set(np.unique(ds.event)) <= {0, 1} and set(np.unique(ds.treated)) == {0, 1}
    assert np.all(ds.time > 0)
    X = ds.X.to_numpy()
    assert X.dtype == float and not np.isnan(X).any()
    assert not {"time", "event", "treated"} & set(ds.feature_names)


def test_gbsg2_says_it_is_not_randomised_and_shows_who_was_treated():
    ds = load_survival_table("gbsg2", verbose=False)
    assert not ds.randomised and "NOT randomised" in ds.summary()
    post = ds.frame["postmenopausal"].to_numpy() == 1
    # 187 of 396 postmenopausal women were treated, 59 of 290 premenopausal ones
    assert (int(ds.treated[post].sum()), int(post.sum())) == (187, 396)
    assert (int(ds.treated[~post].sum()), int((~post).sum())) == (59, 290)


def test_an_unknown_name_says_which_exist():
    with pytest.raises(KeyError, match="actg320"):
        load_survival_table("actg321")


@pytest.mark.parametrize("name", SURVIVAL_NAMES)
def test_the_data_command_says_the_trial_ships_in_scikit_survival(name):
    from medai_lessons.data.images import package_data_state

    assert package_data_state(REGISTRY[name]) == "present (in scikit-survival)"
