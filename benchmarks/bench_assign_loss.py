"""How much of a NanoDet-Plus training step goes to label assignment and the losses.

Times full steps (forward_train + criterion + backward + AdamW step) of nanodet_plus_m on random images with
~10 random GT boxes of realistic sizes each, then the criterion alone (forward, and its backward measured on
detached prediction leaves) and the assignment alone. Prints medians over the timed steps (after warm-up).

    python3 -m benchmarks.bench_assign_loss --batch 32 --size 320 --steps 5   (from the repo root)
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from nanogfl.model import nanodet_plus_m
from nanogfl.model.assigners import DynamicSoftLabelAssigner
from nanogfl.model.assigners.dsla import pad_targets
from nanogfl.model.box_ops import decode_boxes, make_priors
from nanogfl.model.criterion import GFLCriterion

NUM_CLASSES = 80


def random_targets(batch: int, input_hw: tuple[int, int], generator: torch.Generator
                   ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """5..15 boxes per image, side lengths log-uniform in [8, 0.8 * input] (COCO-like spread of sizes)."""
    height, width = input_hw
    boxes, labels = [], []
    for _ in range(batch):
        count = int(torch.randint(5, 16, (1,), generator=generator))
        low, high = torch.log(torch.tensor(8.0)), torch.log(torch.tensor(0.8 * min(height, width)))
        sides = torch.exp(low + (high - low) * torch.rand(count, 2, generator=generator))
        corner = torch.rand(count, 2, generator=generator) * (torch.tensor([width, height]) - sides)
        boxes.append(torch.cat([corner, corner + sides], dim=1))
        labels.append(torch.randint(0, NUM_CLASSES, (count,), generator=generator))
    return boxes, labels


def seconds(fn) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--size", type=int, default=320, help="square input size")
    parser.add_argument("--steps", type=int, default=5, help="timed steps (after one warm-up step)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--channels-last", action="store_true", help="run the model in channels_last")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    input_hw = (args.size, args.size)
    memory_format = torch.channels_last if args.channels_last else torch.contiguous_format
    model = nanodet_plus_m(NUM_CLASSES).to(memory_format=memory_format).train()
    criterion = GFLCriterion(DynamicSoftLabelAssigner(), NUM_CLASSES, reg_max=7, strides=(8, 16, 32, 64))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
    priors = make_priors(input_hw, model.strides)

    rows: dict[str, list[float]] = {k: [] for k in ("step", "forward", "criterion", "backward", "optimizer",
                                                    "criterion_backward", "assign", "num_pos")}
    for step in range(args.steps + 1):
        images = torch.randn(args.batch, 3, *input_hw).contiguous(memory_format=memory_format)
        gt_boxes, gt_labels = random_targets(args.batch, input_hw, generator)

        optimizer.zero_grad(set_to_none=True)
        t_forward, (preds, aux_preds) = seconds(lambda: model.forward_train(images, epoch=0))
        t_criterion, (loss, terms) = seconds(lambda: criterion(preds, aux_preds, gt_boxes, gt_labels, input_hw))
        t_backward, _ = seconds(loss.backward)
        t_optimizer, _ = seconds(optimizer.step)

        # Not part of the step: the criterion's own backward, and the assignment on its own.
        leaves = [p.detach().requires_grad_(True) for p in (preds, aux_preds)]
        leaf_loss, _ = criterion(*leaves, gt_boxes, gt_labels, input_hw)
        t_criterion_backward, _ = seconds(leaf_loss.backward)
        t_assign, _ = seconds(lambda: assign_only(criterion, aux_preds.detach(), priors, gt_boxes, gt_labels))

        if step == 0:
            continue  # warm-up
        for key, value in (("step", t_forward + t_criterion + t_backward + t_optimizer), ("forward", t_forward),
                           ("criterion", t_criterion), ("backward", t_backward), ("optimizer", t_optimizer),
                           ("criterion_backward", t_criterion_backward), ("assign", t_assign),
                           ("num_pos", float(terms["num_pos"]))):
            rows[key].append(value)
        print(f"step {step}: {rows['step'][-1]:.2f} s, loss {loss.item():.3f}, positives {int(terms['num_pos'])}")

    median = {k: statistics.median(v) for k, v in rows.items()}
    share = (median["criterion"] + median["criterion_backward"]) / median["step"]
    print(f"\nnanodet_plus_m, batch {args.batch}, {args.size}x{args.size}, {args.threads} threads, "
          f"{'channels_last' if args.channels_last else 'contiguous'}; median of {args.steps} steps")
    print(f"  full step        {median['step'] * 1000:9.1f} ms")
    print(f"    forward_train  {median['forward'] * 1000:9.1f} ms")
    print(f"    criterion      {median['criterion'] * 1000:9.1f} ms "
          f"(assignment alone {median['assign'] * 1000:.1f} ms)")
    print(f"    backward       {median['backward'] * 1000:9.1f} ms "
          f"(of which criterion ~{median['criterion_backward'] * 1000:.1f} ms)")
    print(f"    AdamW step     {median['optimizer'] * 1000:9.1f} ms")
    print(f"  positives / batch {median['num_pos']:.0f}")
    print(f"  assignment + loss share of the step: {share * 100:.1f}% (target <= 25%)")


def assign_only(criterion: GFLCriterion, guide: torch.Tensor, priors: torch.Tensor,
                gt_boxes: list[torch.Tensor], gt_labels: list[torch.Tensor]) -> None:
    logits = guide[..., :criterion.num_classes]
    pred_boxes = decode_boxes(guide[..., criterion.num_classes:], priors, criterion.reg_max)
    boxes, labels, valid = pad_targets(gt_boxes, gt_labels)
    criterion.assigner.assign_batch(logits, priors, pred_boxes, boxes, labels, valid)


if __name__ == "__main__":
    main()
