"""Model libraries' prints and warnings stay out of the user's terminal (issue 27, item 8)."""

import logging
import warnings

import pytest

from gmdbench.models.chatter import PACKAGE, library_chatter
from gmdbench.models.registry import build_model, model_config


def test_library_prints_and_warnings_go_to_the_debug_log(capsys, caplog):
    with caplog.at_level(logging.DEBUG, logger="gmdbench.models.chatter"), \
            warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        with library_chatter("somelib"):
            print("somelib 1.0 initialised with 12 parameters")
            warnings.warn("feature X is deprecated", UserWarning, stacklevel=1)
    assert capsys.readouterr().out == ""
    assert shown == []
    assert "somelib printed: somelib 1.0 initialised with 12 parameters" in caplog.text
    assert "somelib warned (UserWarning): feature X is deprecated" in caplog.text


def test_gmd_benchs_own_warnings_still_reach_the_user():
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        with library_chatter("somelib"):
            warnings.warn_explicit("your E0 fit is rank-deficient", UserWarning,
                                   str(PACKAGE / "training" / "reference_energies.py"), 1)
    assert [str(w.message) for w in shown] == ["your E0 fit is rank-deficient"]


def test_what_was_said_before_a_failure_is_logged(caplog):
    with caplog.at_level(logging.DEBUG, logger="gmdbench.models.chatter"), \
            pytest.raises(RuntimeError), library_chatter("somelib"):
        print("loading weights")
        raise RuntimeError("bad weights")
    assert "somelib printed: loading weights" in caplog.text


@pytest.mark.parametrize("name", ["chgnet", "painn"])
def test_building_a_chatty_model_prints_and_warns_nothing(name, capfd):
    # CHGNet prints its parameter count; fairchem's PaiNN warns that jittable is deprecated
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        build_model(model_config(name, {}), [1, 6, 8], {"avg_num_neighbors": 6.0})
    captured = capfd.readouterr()
    assert captured.out == "" and captured.err == ""
    assert [str(w.message) for w in shown] == []


def test_chgnet_predicts_without_its_per_call_warning():
    from ase.build import molecule

    from gmdbench.data.graphs import GraphSet

    model = build_model(model_config("chgnet", {}), [1, 6, 8], {"avg_num_neighbors": 6.0})
    _, batch = next(GraphSet([molecule("CH3OH")], 6.0).batches(1))
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        energy = model(batch)["energy"]
    assert [str(w.message) for w in shown] == [] and energy.shape == (1,)
