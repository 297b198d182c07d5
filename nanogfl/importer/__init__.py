"""Import published NanoDet-Plus deploy models (ncnn .param/.bin, ONNX) into nanogfl checkpoints."""
