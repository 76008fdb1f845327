"""Homologous "systems": many processed versions of the same clean utterances.

A pairwise ranker learns from versions of one source utterance produced by different systems
(URGENT-PK's homologous pairs). :func:`build_utterance` makes, for one seed, a clean segment and
every system's version of it from a YAML description such as::

    base: {reverb_probability: 0.3}        # SimulationConfig fields shared by every system
    reference: snr20                      # whose training target is written as clean/<utt>.wav
    systems:
      snr20: {degradation: {snr_range: [20, 20]}}
      snr0:  {degradation: {snr_range: [0, 0]}}
      input: {}                           # the base pipeline as it is
      wiener: {input: input, enhancer: wiener}
      dfn3:   {input: input, enhancer: dfn3}
      early:  {input: input, enhancer: exp/restorer/step000200.pt}

A *degradation* system runs the seeded pipeline of :mod:`sqa.simulation.simulate` with its
overrides; all of them use equally seeded generators, so systems that differ only in a range (the
SNR above) share the noise excerpt, RIR, codec, ... and differ only in that parameter: their
quality order is known. A *processed* system runs an enhancer (classical, neural or a restorer
checkpoint) on another system's output, the "secondary processing" of the CCF-AATC challenge.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from sqa.errors import SqaError
from sqa.simulation.simulate import SimulationConfig, Simulator

Enhancer = Callable[[np.ndarray, int], np.ndarray]
PEAK_SAFE = 0.99


@dataclass(frozen=True)
class SystemSpec:
    """One system of a homologous set.

    Attributes:
        name: System id (folder name); letters, digits, ``-``, ``_`` and ``.`` only.
        degradation: SimulationConfig overrides (degradation systems).
        input: Name of the system whose output is processed (processed systems).
        enhancer: Enhancer name or restorer checkpoint (processed systems).
    """

    name: str
    degradation: Mapping[str, Any] = field(default_factory=dict)
    input: str | None = None
    enhancer: str | None = None


@dataclass(frozen=True)
class SystemSet:
    """A parsed systems description (see the module docstring)."""

    base: Mapping[str, Any]
    systems: tuple[SystemSpec, ...]
    reference: str


def _valid_name(name: str) -> bool:
    return bool(name) and all(c.isalnum() or c in "-_." for c in name) and name[0] != "."


def parse_system_set(data: Mapping[str, Any]) -> SystemSet:
    """Validate a systems description (a mapping read from YAML).

    Raises:
        SqaError: For a bad name, an unknown field, an input defined later or missing, or a
            processed system without an enhancer.
    """
    entries = data.get("systems")
    if not isinstance(entries, Mapping) or not entries:
        raise SqaError("a systems description needs a non-empty 'systems' mapping")
    specs: list[SystemSpec] = []
    for name, entry in entries.items():
        entry = dict(entry or {})
        unknown = set(entry) - {"degradation", "input", "enhancer"}
        if not _valid_name(str(name)) or unknown:
            raise SqaError(f"system {name!r}: bad name or unknown field(s) {sorted(unknown)}")
        spec = SystemSpec(str(name), dict(entry.get("degradation") or {}), entry.get("input"))
        spec = replace(spec, enhancer=entry.get("enhancer"))
        if spec.input is not None:
            if spec.input not in {earlier.name for earlier in specs}:
                raise SqaError(f"system {name!r}: input {spec.input!r} must be defined before it")
            if not spec.enhancer or spec.degradation:
                raise SqaError(f"system {name!r}: a processed system needs only an enhancer")
        elif spec.enhancer:
            raise SqaError(f"system {name!r}: an enhancer needs an input system")
        specs.append(spec)
    degradations = [spec.name for spec in specs if spec.input is None]
    if not degradations:
        raise SqaError("a systems description needs at least one degradation system")
    reference = str(data.get("reference") or degradations[0])
    if reference not in degradations:
        raise SqaError(f"reference {reference!r} is not a degradation system")
    return SystemSet(dict(data.get("base") or {}), tuple(specs), reference)


def load_enhancer(name: str) -> Enhancer:
    """An enhancer by name (classical or neural) or a restorer checkpoint path/manifest name."""
    from sqa.simulation.classical import get_enhancer

    try:
        return get_enhancer(name)
    except SqaError:
        if not (Path(name).is_file() or name.startswith("restorer")):
            raise
    from se_finetune.bsrnn import RESTORER_KINDS  # registers the restorer kind
    from se_finetune.commands import restore
    from sqa.checkpoint import load_model

    model = load_model(name, kinds=RESTORER_KINDS, purpose="a processed system's enhancer").eval()
    return lambda samples, rate: restore(model, samples, rate)


class SystemBuilder:
    """Builds every system's version of seeded clean segments.

    Args:
        system_set: The parsed description.
        config: Base simulation config (rate, segment length, ...); ``system_set.base`` and each
            system's overrides are applied on top.
        speech: Clean speech files.
        noise: Noise files.
        rirs: Room impulse responses.
    """

    def __init__(
        self,
        system_set: SystemSet,
        config: SimulationConfig,
        speech: list[Path],
        noise: list[Path],
        rirs: list[Path],
    ) -> None:
        from sqa.configs import config_from_dict

        self.system_set = system_set
        base = {**_as_dict(config), **system_set.base}
        self.simulators: dict[str, Simulator] = {}
        for spec in system_set.systems:
            if spec.input is None:
                settings = config_from_dict(SimulationConfig, {**base, **spec.degradation})
                self.simulators[spec.name] = Simulator(settings, speech, noise, rirs)
        self.clean_source = self.simulators[system_set.reference]
        self._enhancers: dict[str, Enhancer] = {}

    def enhancer(self, name: str) -> Enhancer:
        """Load (once) and return an enhancer."""
        if name not in self._enhancers:
            self._enhancers[name] = load_enhancer(name)
        return self._enhancers[name]

    def build_utterance(
        self, seed: int, wanted: set[str] | None = None
    ) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, dict[str, Any]]]:
        """Clean target ``(T,)``, each system's signal ``(T,)`` and its info, for one seed.

        Args:
            seed: Seed of the utterance (clean segment and degradation draws).
            wanted: Systems to compute (their inputs are computed too); ``None``: all.
        """
        rng = np.random.default_rng(seed)
        clean, names = self.clean_source.clean_segment(rng)
        # The reference is always built: its target is the clean file of the utterance.
        needed = _with_inputs(self.system_set.systems, wanted) | {self.system_set.reference}
        signals: dict[str, np.ndarray] = {}
        infos: dict[str, dict[str, Any]] = {}
        target = None
        for spec in self.system_set.systems:
            if spec.name not in needed:
                continue
            info: dict[str, Any] = {"seed": int(seed), "speech": names}
            if spec.input is None:
                generator = np.random.default_rng((seed, 1))  # the same draws for every system
                pair = self.simulators[spec.name].degrade(clean, generator, info)
                signals[spec.name] = pair.noisy
                if spec.name == self.system_set.reference:
                    target = pair.target
            else:
                enhanced = self.enhancer(str(spec.enhancer))(signals[spec.input], self.rate)
                signals[spec.name] = _peak_safe(np.asarray(enhanced, dtype=np.float32))
                info.update(infos[spec.input], input=spec.input, enhancer=spec.enhancer)
            infos[spec.name] = info
        assert target is not None  # the reference is a degradation system (parse_system_set)
        return target, signals, infos

    @property
    def rate(self) -> int:
        """Sample rate of every signal."""
        return self.clean_source.config.sample_rate


def _as_dict(config: SimulationConfig) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(config)


def _with_inputs(specs: tuple[SystemSpec, ...], wanted: set[str] | None) -> set[str]:
    """``wanted`` plus, transitively, the systems they process."""
    if wanted is None:
        return {spec.name for spec in specs}
    by_name = {spec.name: spec for spec in specs}
    needed, stack = set(), list(wanted)
    while stack:
        name = stack.pop()
        if name in needed or name not in by_name:
            continue
        needed.add(name)
        if by_name[name].input:
            stack.append(str(by_name[name].input))
    return needed


def _peak_safe(samples: np.ndarray) -> np.ndarray:
    if not np.isfinite(samples).all():
        raise SqaError("an enhancer produced NaN/Inf samples")
    peak = float(np.max(np.abs(samples))) if samples.size else 0.0
    return samples * (PEAK_SAFE / peak) if peak > PEAK_SAFE else samples
