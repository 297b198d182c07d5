"""Torch-free inference: preprocessing, GFL decode, NMS and backends (ONNX Runtime, ncnn, PyTorch).

Nothing in this package imports torch at module level; the PyTorch backend imports it when it is used.
"""
