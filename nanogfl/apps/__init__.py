"""Programs on the torch-free core: predict, the live demo (window / video / MJPEG page), the latency benchmark,
and their frame sources, drawing, MJPEG server and video writer. Importable without torch."""
