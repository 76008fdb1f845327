"""ONNX export of the suite's models (``sqa export onnx``) and onnxruntime back ends.

Export never changes a model's eager (PyTorch) outputs: each kind registers an *export
wrapper* (:func:`sqa.export.registry.register_exporter`) that recomputes the same maths with
traceable, real-valued operations (e.g. :mod:`sqa.export.spectral` for STFT / ISTFT) from the
same weights. Rankers and restorers register theirs from their own packages.
"""
