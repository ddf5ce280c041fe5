"""GPU memory growth is asked for before TensorFlow can touch a GPU, and said when it fails.

There is no GPU here, so the structure is tested: with a fake `tf.config` listing two GPUs,
growth is set on each and a refusal is reported; in a fresh interpreter, the commands'
TensorFlow import (`fastfood.quiet`) puts TF_FORCE_GPU_ALLOW_GROWTH=true in the environment
before `import tensorflow` runs, and sets growth while TensorFlow's devices are still
uninitialised (its eager context has no handle yet: no op has run).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from types import SimpleNamespace

import pytest

from support.cli import env


class FakeConfig:
    """The part of tf.config that `allow_growth` uses, with two GPUs."""

    def __init__(self, refuse: bool = False):
        self.gpus = [SimpleNamespace(name=f"/physical_device:GPU:{i}") for i in range(2)]
        self.grown: list[str] = []
        self.refuse = refuse
        self.experimental = SimpleNamespace(set_memory_growth=self._grow)

    def list_physical_devices(self, kind: str) -> list:
        return self.gpus if kind == "GPU" else []

    def _grow(self, gpu, enable: bool) -> None:
        if self.refuse:
            raise RuntimeError("Physical devices cannot be modified after being initialized")
        self.grown.append(gpu.name)


@pytest.fixture
def fake_tf(monkeypatch: pytest.MonkeyPatch):
    import tensorflow as tf

    from fastfood import gpu_memory

    monkeypatch.delenv(gpu_memory.ENV, raising=False)

    def install(**kw) -> FakeConfig:
        config = FakeConfig(**kw)
        monkeypatch.setattr(tf, "config", config)
        return config

    return install


def test_growth_is_set_on_every_gpu(fake_tf, monkeypatch: pytest.MonkeyPatch) -> None:
    from fastfood import gpu_memory

    config = fake_tf()
    assert gpu_memory.allow_growth() == ""
    assert config.grown == ["/physical_device:GPU:0", "/physical_device:GPU:1"]
    import os

    assert os.environ[gpu_memory.ENV] == "true"


def test_growth_refused_after_the_gpus_started_is_reported(fake_tf, monkeypatch) -> None:
    from fastfood import gpu_memory

    fake_tf(refuse=True)
    monkeypatch.setattr(gpu_memory, "requested_after_import", True)
    problem = gpu_memory.allow_growth()
    assert "initialised the GPUs before memory growth" in problem and "GPU:1" in problem
    assert gpu_memory.describe(problem).startswith("memory growth is off")


def test_the_variable_set_before_the_import_still_covers_a_late_refusal(fake_tf, monkeypatch):
    from fastfood import gpu_memory

    fake_tf(refuse=True)
    monkeypatch.setattr(gpu_memory, "requested_after_import", False)
    assert gpu_memory.allow_growth() == ""


def test_a_user_who_turned_it_off_is_told(fake_tf, monkeypatch: pytest.MonkeyPatch) -> None:
    from fastfood import gpu_memory

    config = fake_tf()
    monkeypatch.setenv(gpu_memory.ENV, "false")
    assert "TF_FORCE_GPU_ALLOW_GROWTH=false" in gpu_memory.allow_growth()
    assert config.grown == []


ORDER = textwrap.dedent("""
    import builtins, os, sys
    seen = {}
    real_import = builtins.__import__

    def spy(name, *args, **kwargs):
        if name == "tensorflow" and "tensorflow" not in sys.modules and "env" not in seen:
            seen["env"] = os.environ.get("TF_FORCE_GPU_ALLOW_GROWTH")
        return real_import(name, *args, **kwargs)

    builtins.__import__ = spy
    from fastfood import gpu_memory
    real_allow = gpu_memory.allow_growth

    def allow():
        from tensorflow.python.eager import context
        seen.setdefault("devices_started", context.context()._context_handle is not None)
        return real_allow()

    gpu_memory.allow_growth = allow
    from fastfood.quiet import import_tensorflow_quietly
    import_tensorflow_quietly()
    print("SEEN", seen["env"], seen["devices_started"])
""")


def test_the_commands_import_asks_for_growth_before_tensorflow_and_before_any_op() -> None:
    environment = env()
    environment.pop("TF_FORCE_GPU_ALLOW_GROWTH", None)
    proc = subprocess.run([sys.executable, "-c", ORDER], capture_output=True, text=True,
                          env=environment, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "SEEN true False" in proc.stdout, proc.stdout


def test_the_command_line_sets_the_variable_before_any_command_runs() -> None:
    script = ("import os, sys\n"
              "from fastfood.cli import main\n"
              "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
              "print('ENV', os.environ.get('TF_FORCE_GPU_ALLOW_GROWTH'),"
              " 'tensorflow' in sys.modules)\n")
    environment = env()
    environment.pop("TF_FORCE_GPU_ALLOW_GROWTH", None)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=environment, timeout=60)
    assert "ENV true False" in proc.stdout, proc.stdout + proc.stderr[-1000:]
