"""Issue 12.1: a class-list change keeps the box outputs and the rows of the classes the checkpoint knows by name
(main head and aux head alike); only new classes start from the fresh initialisation."""
import pytest
import torch

from nanogfl.checkpoint import Checkpoint, save_checkpoint
from nanogfl.config import Config
from nanogfl.engine.pretrained import class_transfer_note, load_pretrained
from nanogfl.errors import UserError
from nanogfl.model.build import build_detector
from nanogfl.model.heads.common import PRIOR_PROB_BIAS

SOURCE_CLASSES = ["a", "b", "c", "d"]
BOX_ROWS = 4 * (7 + 1)


def _source_checkpoint(tmp_path, cfg: Config):
    torch.manual_seed(0)
    source = build_detector(cfg.model, len(SOURCE_CLASSES))
    with torch.no_grad():  # distinct rows everywhere, so a row copied to the wrong place shows
        for conv in [*source.head.predictors, source.aux_head.cls_out]:
            conv.weight.normal_()
            conv.bias.normal_()
    path = tmp_path / "source.pt"
    save_checkpoint(path, Checkpoint(model=source.state_dict(), config=cfg.to_dict(), class_names=SOURCE_CLASSES,
                                     aux_trained=True))
    return path, source


def test_box_rows_and_named_class_rows_are_kept_new_classes_start_fresh(tmp_path):
    cfg = Config()
    cfg.model.input_size = [64, 64]
    path, source = _source_checkpoint(tmp_path, cfg)
    classes = ["c", "new", "a"]  # c and a known (moved), "new" unknown, b and d dropped
    torch.manual_seed(1)
    target = build_detector(cfg.model, len(classes))
    fresh = {k: v.clone() for k, v in target.state_dict().items()}
    with pytest.warns(UserWarning, match=r"4 classes in the checkpoint, 3 in this run; box outputs kept; class "
                                         r"outputs kept by name for 2 \(c, a\); new, freshly initialised: 1 "
                                         r"\(new\); 2 checkpoint classes not used"):
        assert load_pretrained(target, str(path), classes) is True
    state, src = target.state_dict(), source.state_dict()
    for level in range(len(target.head.predictors)):
        for kind in ("weight", "bias"):
            name = f"head.predictors.{level}.{kind}"
            assert state[name].shape[0] == 3 + BOX_ROWS
            torch.testing.assert_close(state[name][3:], src[name][4:])  # the box rows, exactly
            torch.testing.assert_close(state[name][0], src[name][2])  # c
            torch.testing.assert_close(state[name][2], src[name][0])  # a
            torch.testing.assert_close(state[name][1], fresh[name][1])  # new: the fresh init
        assert float(state[f"head.predictors.{level}.bias"][1]) == pytest.approx(PRIOR_PROB_BIAS)
    for kind in ("weight", "bias"):
        name = f"aux_head.cls_out.{kind}"
        torch.testing.assert_close(state[name][[0, 2]], src[name][[2, 0]])
        torch.testing.assert_close(state[name][1], fresh[name][1])
        torch.testing.assert_close(state[f"aux_head.reg_out.{kind}"], src[f"aux_head.reg_out.{kind}"])
    torch.testing.assert_close(state["backbone.stem.0.weight"], src["backbone.stem.0.weight"])


def test_same_classes_load_exactly_without_a_warning(tmp_path, recwarn):
    cfg = Config()
    path, source = _source_checkpoint(tmp_path, cfg)
    target = build_detector(cfg.model, len(SOURCE_CLASSES))
    load_pretrained(target, str(path), SOURCE_CLASSES)
    assert not [w for w in recwarn if "classes" in str(w.message)]
    for name, value in source.state_dict().items():
        torch.testing.assert_close(target.state_dict()[name], value)


def test_another_reg_max_is_refused(tmp_path):
    cfg = Config()
    path, _ = _source_checkpoint(tmp_path, cfg)
    cfg.model.head.reg_max = 5
    with pytest.raises(UserError, match="weights do not fit this architecture"):
        load_pretrained(build_detector(cfg.model, 2), str(path), ["a", "x"])


def test_note_names_every_class_once():
    note = class_transfer_note("m.pt", ["person", "car"], ["car", "person", "drone"])
    assert note == ("m.pt: 2 classes in the checkpoint, 3 in this run; box outputs kept; class outputs kept by name "
                    "for 2 (car, person); new, freshly initialised: 1 (drone)")
