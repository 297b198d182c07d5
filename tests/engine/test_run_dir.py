"""Run folders: a new run never overwrites another; the run folder keeps config.yml, metrics.csv, TensorBoard,
a weights-only best.pt and a resumable last.pt; a training set without boxes stops before anything is written."""
import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from helpers import tiny_coco, tiny_config

from nanogfl.checkpoint import AUX_PREFIXES, load_model, read_checkpoint
from nanogfl.config import load_config
from nanogfl.engine.distributed import DistInfo
from nanogfl.engine.run_dir import choose_run_dir
from nanogfl.engine.train import Trainer
from nanogfl.errors import UserError


def test_choose_run_dir(tmp_path):
    out = tmp_path / "run"
    assert choose_run_dir(out) == (out, None)  # nothing there yet
    out.mkdir()
    (out / "notes.txt").write_text("not a run")
    assert choose_run_dir(out) == (out, None)  # a folder without a run is used as it is
    (out / "metrics.csv").write_text("epoch\n")
    chosen, note = choose_run_dir(out)
    assert chosen == tmp_path / "run-2" and "holds a previous run" in note and "\n" not in note
    (tmp_path / "run-2" / "tensorboard").mkdir(parents=True)
    assert choose_run_dir(out)[0] == tmp_path / "run-3"
    assert choose_run_dir(out, resume="auto") == (out, None)
    assert choose_run_dir(out, resume=str(out / "last.pt")) == (out, None)
    assert choose_run_dir(out, resume=str(tmp_path / "elsewhere.pt"))[0] == tmp_path / "run-3"
    assert choose_run_dir(out, overwrite=True) == (out, None)
    with pytest.raises(UserError, match="give one of them"):
        choose_run_dir(out, resume="auto", overwrite=True)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, coco_train):
    """One epoch with evaluation, so that both best.pt and last.pt exist."""
    root = tmp_path_factory.mktemp("runs")
    ann, images = coco_train
    tiny = tiny_coco(ann, root / "data", num_images=4)
    config = tiny_config(root, tiny, images, epochs=1, val_interval=1)
    trainer = Trainer(load_config(config), torch.device("cpu"), DistInfo())
    trainer.fit()
    return root, config, trainer


def test_run_folder_contents_and_best_is_weights_only(trained):
    root, config, trainer = trained
    run = root / "run"
    assert trainer.out == run and {"config.yml", "metrics.csv", "tensorboard", "best.pt", "last.pt"} <= {
        p.name for p in run.iterdir()}
    assert load_config(run / "config.yml").to_dict() == trainer.cfg.to_dict()
    best, last = read_checkpoint(run / "best.pt"), read_checkpoint(run / "last.pt")
    assert best.train_state is None and last.train_state is not None
    assert not any(k.startswith(AUX_PREFIXES) for k in best.model) and not best.aux_trained
    assert (run / "best.pt").stat().st_size * 10 < (run / "last.pt").stat().st_size  # 5 MB against 70 MB
    model, _, class_names = load_model(run / "best.pt")  # what val, export and predict open
    for name, value in model.state_dict().items():
        torch.testing.assert_close(value, trainer.ema.module.state_dict()[name])


def test_a_second_run_gets_a_new_folder_unless_resumed_or_overwritten(trained, capsys):
    root, config, _ = trained
    second = Trainer(load_config(config), torch.device("cpu"), DistInfo())
    assert second.out == root / "run-2" and second.cfg.output_dir == str(root / "run-2")
    assert f"{root / 'run'} holds a previous run: this run goes to {root / 'run-2'}" in capsys.readouterr().out
    assert load_config(root / "run-2" / "config.yml").output_dir == str(root / "run-2")
    assert Trainer(load_config(config), torch.device("cpu"), DistInfo(), resume="auto").out == root / "run"
    before = (root / "run" / "last.pt").stat().st_mtime_ns
    assert Trainer(load_config(config), torch.device("cpu"), DistInfo(), resume=str(root / "run" / "last.pt"),
                   ).out == root / "run"
    assert (root / "run" / "last.pt").stat().st_mtime_ns == before  # resuming writes nothing before training


def test_overwrite_replaces_the_previous_run(trained, tmp_path):
    root, _, _ = trained
    cfg = load_config(root / "run" / "config.yml")
    out = tmp_path / "run"
    out.mkdir()
    for name in ("last.pt", "best.pt", "metrics.csv"):
        (out / name).write_text("old")
    (out / "keep.txt").write_text("not ours")
    cfg.output_dir = str(out)
    trainer = Trainer(cfg, torch.device("cpu"), DistInfo(), overwrite=True)
    assert trainer.out == out
    assert sorted(p.name for p in out.iterdir()) == ["config.yml", "keep.txt", "tensorboard"]


def test_fine_tuning_from_best_pt_loads_without_an_aux_branch(trained, tmp_path, capsys, recwarn):
    root, _, source = trained
    cfg = load_config(root / "run" / "config.yml")
    cfg.output_dir = str(tmp_path / "ft")
    cfg.train.pretrained = str(root / "run" / "best.pt")
    target = Trainer(cfg, torch.device("cpu"), DistInfo())
    assert not [w for w in recwarn if "best.pt" in str(w.message)]  # same classes, no tensor left out
    assert "has no trained aux branch: the main head guides assignment" in capsys.readouterr().out
    torch.testing.assert_close(target.model.backbone.stem[0].weight, source.ema.module.backbone.stem[0].weight)


def test_a_training_set_without_boxes_stops_before_anything_is_written(trained, tmp_path):
    root, config, _ = trained
    data = json.loads((root / "data" / "tiny.json").read_text())
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({**data, "annotations": []}))
    cfg = load_config(config, [f"data.train.ann={empty}", f"output_dir={tmp_path / 'run'}"])
    with pytest.raises(UserError, match=f"{empty}: no boxes in the train set \\(4 images"):
        Trainer(cfg, torch.device("cpu"), DistInfo())
    assert not (tmp_path / "run").exists()


RANKS_AGREE = textwrap.dedent("""
    import sys
    from pathlib import Path
    from nanogfl.engine import distributed as D
    from nanogfl.engine.run_dir import agree_on_run_dir
    info = D.init_distributed("cpu")
    # each rank is given another folder: only rank 0's decision counts
    print("RESULT", agree_on_run_dir(Path(sys.argv[1 + info.rank]), info))
    D.cleanup(info)
""")


def test_ddp_ranks_use_rank_0_s_folder(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "last.pt").write_text("x")
    script = tmp_path / "agree.py"
    script.write_text(RANKS_AGREE)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH", "")])}
    procs = [subprocess.Popen([sys.executable, str(script), str(tmp_path / "a"), str(tmp_path / "b")],
                              env={**env, "RANK": str(rank), "LOCAL_RANK": str(rank)}, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for rank in (0, 1)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err[-2000:] for _, err in outputs]
    chosen = [line.split(" ", 1)[1] for out, _ in outputs for line in out.splitlines() if line.startswith("RESULT")]
    assert chosen == [str(tmp_path / "a-2")] * 2
