"""Plain progress lines for logs: first step, then at most one a minute, and the last."""

from gmdbench.progress import ProgressLines


def test_lines_are_rate_limited_and_give_elapsed_and_eta():
    said, now = [], [0.0]
    lines = ProgressLines(said.append, "training mace", "epoch", total=10, interval=60,
                          clock=lambda: now[0])
    for epoch in range(1, 11):
        now[0] = 25.0 * epoch  # 25 s an epoch
        lines.update(epoch, val_loss="0.1")
    # epoch 1 (first), 4 (100 s, 75 s after the last line), 7, 10 (last)
    assert [line.split(",")[0] for line in said] == [
        "training mace: epoch 1/10", "training mace: epoch 4/10", "training mace: epoch 7/10",
        "training mace: epoch 10/10"]
    # 25 s an epoch since the first line, 6 epochs left
    assert said[1] == ("training mace: epoch 4/10, val loss 0.1, elapsed 0:01:40, "
                       "ETA 0:02:30")
    assert "ETA" not in said[-1]


def test_a_resumed_run_counts_its_rate_from_where_it_resumed():
    said, now = [], [0.0]
    lines = ProgressLines(said.append, "x", "epoch", total=100, interval=0,
                          clock=lambda: now[0])
    now[0] = 10.0
    lines.update(50)  # resumed at epoch 50: no rate yet
    now[0] = 20.0
    lines.update(51)
    assert "ETA" not in said[0] and said[1].endswith("ETA 0:08:10")  # 10 s/epoch x 49
