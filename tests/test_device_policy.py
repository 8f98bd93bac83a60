"""The device policies of medai_lessons.device (MEDAI_DEVICE = cpu / gpu / auto) and the
one-line report, with stand-ins for TensorFlow and Keras so that the GPU branches run on a
machine without a GPU (test_kernels.py runs them for real)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from medai_lessons.device import DeviceInfo, apply_policy, device_policy


class FakeConfig:
    """The parts of ``tf.config`` that apply_policy uses; changing a device after the runtime
    has started raises, as in TensorFlow."""

    def __init__(self, gpus, capability=(8, 0), started=False):
        self.gpus = [SimpleNamespace(name=f"/physical_device:GPU:{i}") for i in range(gpus)]
        self.capability = capability
        self.started = started
        self.hidden = False
        self.growth = []
        self.experimental = SimpleNamespace(set_memory_growth=self._growth,
                                            get_device_details=self._details)

    def list_physical_devices(self, kind):
        return [] if self.hidden else list(self.gpus)

    def set_visible_devices(self, devices, kind):
        assert devices == [] and kind == "GPU"
        self._refuse_after_start()
        self.hidden = True

    def list_logical_devices(self):
        self.started = True

    def _refuse_after_start(self):
        if self.started:
            raise RuntimeError("Physical devices cannot be modified after being initialized")

    def _growth(self, gpu, on):
        self._refuse_after_start()
        self.growth.append((gpu.name, on))

    def _details(self, gpu):
        return {"device_name": "Test GPU", "compute_capability": self.capability}


def fakes(gpus=1, capability=(8, 0), started=False, cuda=True):
    config = FakeConfig(gpus, capability, started)
    tf = SimpleNamespace(__version__="2.99", config=config,
                         test=SimpleNamespace(is_built_with_cuda=lambda: cuda))
    policies = []
    keras = SimpleNamespace(__version__="3.99",
                            mixed_precision=SimpleNamespace(set_global_policy=policies.append))
    return tf, keras, policies


def test_gpu_policy_turns_on_memory_growth_and_mixed_precision():
    tf, keras, policies = fakes(gpus=2)
    info = apply_policy(tf, keras, "gpu", mixed_precision=True)
    assert info.gpus == ["Test GPU", "Test GPU"]
    assert info.memory_growth and tf.config.growth == [("/physical_device:GPU:0", True),
                                                       ("/physical_device:GPU:1", True)]
    assert info.mixed_precision and policies == ["mixed_float16"]
    assert tf.config.started, "the runtime starts after the devices are set up"
    assert info.line() == ("TensorFlow 2.99 / Keras 3.99 on GPU x2 (Test GPU, Test GPU), "
                           "memory growth and mixed precision on (MedAI (GPU) kernel)")


@pytest.mark.parametrize(("capability", "opt_in"), [((6, 1), True), ((8, 0), False)])
def test_mixed_precision_only_where_it_helps_and_not_when_opted_out(capability, opt_in):
    tf, keras, policies = fakes(capability=capability)
    info = apply_policy(tf, keras, "auto", mixed_precision=opt_in)
    assert info.memory_growth and not info.mixed_precision and policies == []
    assert "memory growth on (device policy auto)" in info.line()


def test_cpu_policy_hides_a_gpu():
    tf, keras, policies = fakes(gpus=1)
    info = apply_policy(tf, keras, "cpu", mixed_precision=True)
    assert tf.config.hidden and info.gpus == [] and not info.memory_growth and policies == []
    assert info.line().endswith("on CPU (MedAI (CPU) kernel: GPUs hidden)")


def test_runtime_already_started_is_a_note_not_a_crash():
    tf, keras, _ = fakes(started=True)
    info = apply_policy(tf, keras, "gpu", mixed_precision=False)
    assert not info.memory_growth and info.gpus == ["Test GPU"]
    assert "memory growth not set" in info.notes[0]


@pytest.mark.parametrize(("cuda", "expected"), [
    (True, "on CPU (MedAI (GPU) kernel, but TensorFlow sees no GPU: falling back to CPU)"),
    (False, "this TensorFlow has no CUDA support: install the package with [gpu]: falling back"),
])
def test_gpu_kernel_without_a_gpu_says_it_falls_back(cuda, expected):
    tf, keras, _ = fakes(gpus=0, cuda=cuda)
    info = apply_policy(tf, keras, "gpu", mixed_precision=True)
    assert expected in info.line()


@pytest.mark.parametrize(("value", "policy", "noted"), [
    (None, "auto", False), ("", "auto", False), ("cpu", "cpu", False), (" GPU ", "gpu", False),
    ("cuda", "auto", True),
])
def test_device_policy_from_the_environment(monkeypatch, value, policy, noted):
    if value is None:
        monkeypatch.delenv("MEDAI_DEVICE", raising=False)
    else:
        monkeypatch.setenv("MEDAI_DEVICE", value)
    notes = []
    assert device_policy(notes) == policy
    assert bool(notes) is noted
    if noted:
        assert "'cuda' is not one of auto, cpu, gpu" in notes[0]


def test_auto_policy_on_a_cpu_says_so():
    info = DeviceInfo(tensorflow="2", keras="3", built_with_cuda=False)
    assert info.line() == ("TensorFlow 2 / Keras 3 on CPU (no GPU: fine for this course; "
                           "device policy auto)")
