"""Training: the CNN builder, a short real run, and resuming after the process is killed."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from cxr_utils.training import read_history

TRAIN_SCRIPT = textwrap.dedent(
    """
    import os, sys
    import keras
    from cxr_utils.cache import cache_images
    from cxr_course.chapters import saved
    from cxr_utils.models import compile_binary
    from cxr_utils.training import CachedBatches, fit_with_callbacks, set_seeds

    build_cnn = saved("build_cnn")  # chapter 03's

    data, cache_dir, run_dir, kill_after = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    set_seeds(0)
    cache = cache_images(data, size=32, cache_dir=cache_dir, progress=False)
    x, y = cache.images, cache.labels
    train = CachedBatches(x[::2], y[::2], 32, shuffle=True)
    validation = CachedBatches(x[1::2], y[1::2], 64)
    model = compile_binary(build_cnn(32, filters=(8, 16), dropout=0.0))

    class Kill(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            print(f"starting epoch {epoch}", flush=True)
        def on_epoch_end(self, epoch, logs=None):
            if epoch + 1 == kill_after:
                os._exit(9)  # as abrupt as a killed kernel: no cleanup

    history = fit_with_callbacks(
        model, train, validation, run_dir=run_dir, epochs=3, patience=10, extra_callbacks=[Kill()], verbose=0
    )
    print("epochs", list(history["epoch"]), flush=True)
    """
)


def test_cnn_shapes():
    from helpers import build_cnn

    model = build_cnn(64, channels=1, filters=(8, 16, 32))
    assert model.input_shape == (None, 64, 64, 1) and model.output_shape == (None, 1)
    out = model.predict(np.zeros((2, 64, 64, 1), "float32"), verbose=0)
    assert ((out >= 0) & (out <= 1)).all()


@pytest.mark.slow
def test_training_resumes_after_being_killed(originals, tmp_path):
    script = tmp_path / "train.py"
    script.write_text(TRAIN_SCRIPT)
    run_dir = tmp_path / "run"
    args = [sys.executable, str(script), str(originals), str(tmp_path / "cache"), str(run_dir)]
    killed = subprocess.run([*args, "1"], capture_output=True, text=True, timeout=600)
    assert killed.returncode == 9, killed.stderr[-2000:]
    assert "starting epoch 0" in killed.stdout and "starting epoch 1" not in killed.stdout
    assert list(read_history(run_dir)["epoch"]) == [0]
    assert (run_dir / "backup").exists() and (run_dir / "best.weights.h5").exists()

    resumed = subprocess.run([*args, "0"], capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "starting epoch 0" not in resumed.stdout and "starting epoch 1" in resumed.stdout
    assert "epochs [0, 1, 2]" in resumed.stdout
    history = read_history(run_dir)
    assert list(history["epoch"]) == [0, 1, 2] and history["val_auc"].notna().all()
    assert not (run_dir / "backup").exists()  # removed once training finished


def test_the_history_figure_names_its_metrics_readably():
    import pandas as pd

    from cxr_utils.plots_results import plot_history

    history = pd.DataFrame(
        {"epoch": [0, 1, 2], "loss": [0.7, 0.5, 0.4], "val_loss": [0.8, 0.6, 0.6], "auc": [0.8, 0.9, 0.95]}
    ).assign(val_auc=[0.75, 0.88, 0.86])
    fig = plot_history(history)
    loss_ax, auc_ax = fig.axes
    assert auc_ax.get_title() == "ROC AUC" and auc_ax.get_ylabel() == "ROC AUC"
    assert loss_ax.get_title().startswith("loss") and "auc" not in loss_ax.get_title()
    assert "best validation (epoch 2)" in [t.get_text() for t in auc_ax.get_legend().get_texts()]
    assert [t for t in auc_ax.get_xticks() if 1 <= t <= 3] == [1, 2, 3]  # whole epochs only
