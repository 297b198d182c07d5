"""Export a trained checkpoint to ONNX and ncnn (BN folded, one output tensor), verify the exported files against
PyTorch, and optionally quantise the ONNX model to int8. Needs the ``export`` extra (torch, onnx, onnxsim,
onnxruntime, ncnn, pnnx); the exported models run with ``nanogfl.runtime`` alone."""
