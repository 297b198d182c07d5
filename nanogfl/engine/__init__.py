"""Training: the loop, EMA, LR schedule, in-training evaluation, DDP plumbing, logs, and running a .pt checkpoint
(torch_backend). Everything here needs torch."""
