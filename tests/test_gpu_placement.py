"""The GPU branch of the DALI loader, checked for structure on a machine without a GPU.

Nothing is executed on a device: the GPU branch is forced with ``device='gpu:0'``, and since
this machine has no CUDA the DALI pipeline under the dataset is built with DALI's CPU
backend (the only part swapped). What is checked is what the loop gets: the
``DALIDataset`` itself, with no tf.data op (Take, Concatenate, Prefetch...) on top, and
its iterator made under ``tf.device('/gpu:0')``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fastfood import loaders

pytestmark = pytest.mark.skipif(not loaders.dali_available(),
                                reason="DALI TensorFlow plugin not importable")


def _dataset_chain(ds) -> list[str]:
    """Type names of a dataset and every dataset under it (its input graph)."""
    names, todo = [], [ds]
    while todo:
        node = todo.pop()
        names.append(type(node).__name__)
        todo.extend(node._inputs())
    return names


@pytest.fixture
def cpu_backend_for_gpu_branch(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """Build the DALI pipeline with the CPU backend (no CUDA here); record what was asked."""
    from fastfood.loaders import dali, dali_pipeline

    asked: list[dict] = []

    def make(files, labels, request, *, device="cpu", device_id=None, share=None, **more):
        asked.append({"device": device, "device_id": device_id, "threads": share.num_threads})
        return dali_pipeline.make_pipeline(files, labels, request, device="cpu", share=share,
                                           **more)

    monkeypatch.setattr(dali, "make_pipeline", make)
    return asked


def _iterator_devices(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the device scope in force whenever a DALIDataset's iterator is made."""
    import nvidia.dali.plugin.tf as dali_tf
    import tensorflow as tf

    seen: list[str] = []

    def fake_iter(self):
        seen.append(tf.device(None)._ctx.device_spec.to_string())
        return iter([])

    monkeypatch.setattr(dali_tf.DALIDataset, "__iter__", fake_iter)
    return seen


def test_gpu_dataset_is_the_bare_dali_dataset(cpu_backend_for_gpu_branch, tmp_path: Path) -> None:
    import nvidia.dali.plugin.tf as dali_tf

    from fastfood.loaders import dali
    from support.images import write_tiny_set

    files = write_tiny_set(tmp_path, 12)
    for training in (True, False):
        request = loaders.LoaderRequest(kind="dali", training=training, batch_size=4,
                                        image_size=16, device="gpu:0", epochs=3)
        ds = dali.build(files, list(range(12)), request)
        assert isinstance(ds, dali_tf.DALIDataset), type(ds)
        chain = _dataset_chain(ds)
        assert not [n for n in chain if "Take" in n or "Concatenate" in n or "Prefetch" in n], chain
        assert cpu_backend_for_gpu_branch[-1]["device"] == "gpu"
        assert cpu_backend_for_gpu_branch[-1]["device_id"] == 0
    # On the host, the same request ends (take) so plain consumers see a finite dataset.
    host = dali.build(files, list(range(12)), request.but(device="cpu"))
    assert any("Take" in n for n in _dataset_chain(host))


def test_the_loop_makes_gpu_iterators_under_the_gpu(cpu_backend_for_gpu_branch,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path) -> None:
    import tensorflow as tf

    from fastfood.config import LoaderConfig, RunConfig, TrainConfig
    from fastfood.train.feeds import EvalFeed, TrainFeed
    from fastfood.train.position import Position
    from fastfood.train.setup import plan
    from support.images import write_tiny_set

    files = write_tiny_set(tmp_path, 12)
    seen = _iterator_devices(monkeypatch)
    request = loaders.LoaderRequest(kind="dali", image_size=16)
    strategy = tf.distribute.get_strategy()
    config = RunConfig(loader=LoaderConfig(batch_size=4), train=TrainConfig(epochs=3))
    shape = plan(12, config, strategy, on_device=True)
    feed = TrainFeed(strategy, shape, files, list(range(12)), request)
    first = feed.at(Position())
    # The next epoch comes from the same long-lived pipeline: no new dataset is made.
    assert feed.at(Position(3, 1, 0)) is first and feed.builds == 1
    evals = EvalFeed(strategy, shape, files, list(range(12)), request)
    batches, steps = evals.batches()
    assert steps == 3
    assert evals.batches()[0] is batches and evals.builds == 1
    assert [d.rsplit("/", 1)[-1] for d in seen] == ["device:GPU:0"] * 2, seen
