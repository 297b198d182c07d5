"""The training step's precision choice (bf16 autocast on capable CPUs) and its host reads."""
import pytest
import torch
from helpers import tiny_coco, tiny_config

from nanogfl.config import TrainConfig, load_config
from nanogfl.engine.distributed import DistInfo
from nanogfl.engine.host_reads import count_host_reads
from nanogfl.engine.precision import choose_precision, cpu_bf16_flags
from nanogfl.engine.step import HOST_READS_PER_STEP, train_step
from nanogfl.engine.train import Trainer

CPU = torch.device("cpu")


@pytest.fixture()
def cpuinfo(tmp_path):
    def write(flags: str):
        path = tmp_path / f"cpuinfo-{len(list(tmp_path.glob('cpuinfo-*')))}"
        path.write_text(f"processor\t: 0\nflags\t\t: fpu sse2 avx2 {flags}\n")
        return path
    return write


def test_cpu_bf16_is_detected_from_the_cpu_flags(cpuinfo):
    assert cpu_bf16_flags(cpuinfo("avx512f avx512_bf16 amx_bf16")) == ["avx512_bf16", "amx_bf16"]
    assert cpu_bf16_flags(cpuinfo("avx512f avx512_vnni")) == []


def test_precision_follows_cpu_bf16_and_says_why(cpuinfo):
    capable, plain = cpuinfo("avx512_bf16"), cpuinfo("avx512f")
    on = choose_precision(TrainConfig(cpu_bf16="auto"), CPU, capable)
    assert on.dtype == torch.bfloat16 and on.note == "bf16 autocast on: CPU has avx512_bf16"
    off = choose_precision(TrainConfig(cpu_bf16="auto"), CPU, plain)
    assert off.dtype is None and off.note.startswith("bf16 autocast off: CPU has neither avx512_bf16")
    assert choose_precision(TrainConfig(cpu_bf16="off"), CPU, capable).dtype is None
    forced = choose_precision(TrainConfig(cpu_bf16="on"), CPU, plain)
    assert forced.dtype == torch.bfloat16 and "emulated" in forced.note
    assert not forced.uses_grad_scaler  # bf16 needs no loss scaling
    assert choose_precision(TrainConfig(amp=True), torch.device("cuda"), capable).uses_grad_scaler


@pytest.fixture()
def tiny(tmp_path, coco_train):
    ann, images = coco_train
    return tiny_coco(ann, tmp_path / "data"), images


@pytest.mark.parametrize("cpu_bf16", ["off", "on"])
def test_training_step_reads_the_host_only_to_decide(tmp_path, tiny, cpu_bf16):
    cfg = load_config(tiny_config(tmp_path, *tiny, epochs=1, cpu_bf16=cpu_bf16))
    trainer = Trainer(cfg, CPU, DistInfo())
    batches = iter(trainer.loader)
    with count_host_reads() as reads:
        results = [train_step(trainer, next(batches)) for _ in range(2)]
    assert all(applied for applied, _, _ in results)
    assert reads.value_reads() <= 2 * HOST_READS_PER_STEP, reads.library
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())  # fp32 master weights
    assert all(torch.isfinite(loss) and loss.dtype == torch.float32 for _, loss, _ in results)
    assert trainer.optimizer.defaults.get("fused") is (True if cpu_bf16 == "on" else None)
