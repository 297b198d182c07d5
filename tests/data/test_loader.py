"""The torch Dataset / collate / DataLoader on a small real COCO subset."""
import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from nanogfl.config import AugmentConfig
from nanogfl.data import CocoSource, TrainTransform
from nanogfl.data.loader import DetectionDataset, build_loader, collate, set_epoch
from nanogfl.data.transforms import boxes_into_input
from nanogfl.errors import UserError
from nanogfl.image_io import DataWarning
from nanogfl.runtime.preprocess import preprocess

INPUT_HW = (64, 96)



def resize_only(image, boxes, labels, rng):
    """A deterministic transform: the runtime's stretch resize + normalise, boxes mapped along."""
    blob, matrix = preprocess(image, INPUT_HW)
    boxes, labels = boxes_into_input(boxes, labels, matrix, INPUT_HW)
    return blob[0], boxes, labels, matrix


def small_coco(coco_train, tmp_path: Path, count: int, corrupt: tuple[int, ...] = ()) -> CocoSource:
    """The first ``count`` train images (copied; those in ``corrupt`` replaced by garbage) with their json."""
    ann_file, image_dir = coco_train
    data = json.loads(ann_file.read_text())
    images = data["images"][:count]
    ids = {im["id"] for im in images}
    folder = tmp_path / "images"
    folder.mkdir(exist_ok=True)
    for k, image in enumerate(images):
        target = folder / image["file_name"]
        if k in corrupt:
            target.write_bytes(b"definitely not an image")
        else:
            shutil.copy(image_dir / image["file_name"], target)
    subset = dict(data, images=images, annotations=[a for a in data["annotations"] if a["image_id"] in ids])
    (tmp_path / "subset.json").write_text(json.dumps(subset))
    return CocoSource(tmp_path / "subset.json", folder)


def test_item_and_collate(coco_train, tmp_path):
    source = small_coco(coco_train, tmp_path, 3)
    dataset = DetectionDataset(source, resize_only, seed=0)
    item = dataset[1]
    info = source.image_info(1)
    boxes, labels = source.annotation(1)
    assert item["image"].shape == (3, *INPUT_HW) and item["image"].dtype == torch.float32
    assert item["labels"].dtype == torch.int64 and item["boxes"].dtype == torch.float32
    assert item["image_id"] == info.image_id
    scaled = boxes * ([INPUT_HW[1] / info.width, INPUT_HW[0] / info.height] * 2)
    big_enough = ((scaled[:, 2:] - scaled[:, :2]) >= 1).all(axis=1)  # smaller ones are dropped at this size
    assert 0 < big_enough.sum() < len(boxes)
    np.testing.assert_allclose(item["boxes"].numpy(), scaled[big_enough], rtol=1e-5)
    assert item["labels"].tolist() == labels[big_enough].tolist()
    batch = collate([dataset[0], dataset[1], dataset[2]])
    assert batch["images"].shape == (3, 3, *INPUT_HW)
    assert len(batch["boxes"]) == len(batch["labels"]) == len(batch["image_ids"]) == 3
    assert batch["image_ids"][1] == info.image_id


def test_unreadable_image_moves_on_to_the_next(coco_train, tmp_path):
    source = small_coco(coco_train, tmp_path, 3, corrupt=(1,))
    dataset = DetectionDataset(source, resize_only)
    with pytest.warns(DataWarning, match=source.image_info(1).file_name):
        item = dataset[1]
    assert item["image_id"] == source.image_info(2).image_id
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once per file: the known-bad index is not read again
        assert dataset[1]["image_id"] == source.image_info(2).image_id


def test_all_unreadable_is_a_clear_error(coco_train, tmp_path):
    source = small_coco(coco_train, tmp_path, 2, corrupt=(0, 1))
    with pytest.warns(DataWarning), pytest.raises(UserError, match="subset.json: none of the 2 images"):
        DetectionDataset(source, resize_only)[0]


def batches(loader) -> list[dict]:
    return [batch for batch in loader]


def assert_same_batches(a: list[dict], b: list[dict]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert torch.equal(x["images"], y["images"])
        assert x["image_ids"] == y["image_ids"]
        assert all(torch.equal(p, q) for p, q in zip(x["boxes"], y["boxes"]))


def test_augmentation_and_order_are_reproducible_per_epoch(coco_train, tmp_path):
    source = small_coco(coco_train, tmp_path, 6)
    transform = TrainTransform(INPUT_HW, AugmentConfig())
    single = build_loader(DetectionDataset(source, transform, seed=3), batch_size=2, shuffle=True, workers=0,
                          distributed=False, seed=5, drop_last=True)
    parallel = build_loader(DetectionDataset(source, transform, seed=3), batch_size=2, shuffle=True, workers=2,
                            distributed=False, seed=5, drop_last=True)
    set_epoch(single, 0)
    set_epoch(parallel, 0)
    epoch0 = batches(single)
    assert_same_batches(epoch0, batches(parallel))  # independent of the number of workers
    assert_same_batches(epoch0, batches(single))  # and of how often the epoch is replayed
    set_epoch(single, 1)
    set_epoch(parallel, 1)
    epoch1 = batches(single)
    assert_same_batches(epoch1, batches(parallel))
    order0 = [i for b in epoch0 for i in b["image_ids"]]
    order1 = [i for b in epoch1 for i in b["image_ids"]]
    assert sorted(order0) == sorted(order1) and order0 != order1
    first_image = {i: b["images"][k] for b in epoch0 for k, i in enumerate(b["image_ids"])}
    second_image = {i: b["images"][k] for b in epoch1 for k, i in enumerate(b["image_ids"])}
    assert not any(torch.equal(first_image[i], second_image[i]) for i in first_image)


def test_sequential_loader_keeps_order_and_last_batch(coco_train, tmp_path):
    source = small_coco(coco_train, tmp_path, 5)
    loader = build_loader(DetectionDataset(source, resize_only), batch_size=2, shuffle=False,
                          workers=0, distributed=False, seed=0, drop_last=False)
    set_epoch(loader, 4)
    ids = [i for b in loader for i in b["image_ids"]]
    assert ids == [source.image_info(i).image_id for i in range(5)]


def test_distributed_sampler_with_one_process(coco_train, tmp_path):
    import torch.distributed as dist

    if not dist.is_available() or dist.is_initialized():
        pytest.skip("torch.distributed unavailable or already initialised")
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'rendezvous'}", rank=0, world_size=1)
    try:
        source = small_coco(coco_train, tmp_path, 4)
        loader = build_loader(DetectionDataset(source, resize_only), batch_size=2, shuffle=True,
                              workers=0, distributed=True, seed=1, drop_last=False)
        assert isinstance(loader.sampler, torch.utils.data.DistributedSampler)
        set_epoch(loader, 2)
        assert loader.sampler.epoch == 2 and loader.dataset.epoch == 2
        assert sorted(i for b in loader for i in b["image_ids"]) == sorted(
            source.image_info(i).image_id for i in range(4))
    finally:
        dist.destroy_process_group()
