"""The torch-free core: preprocessing, GFL decode, NMS, postprocessing, model metadata, the ONNX Runtime and
ncnn backends and the Detector pipeline. Imports nothing above it (no torch, no config, no dataset readers).
"""
