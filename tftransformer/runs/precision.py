"""Which 16-bit float the training device computes natively: `--mixed-precision auto`.

Mixed precision only pays where the hardware has 16-bit arithmetic. On a CPU
without bfloat16 instructions TensorFlow emulates bfloat16 through float32
conversions: measured on a 2-core AMD EPYC with AVX2 + FMA only, an
attention-shaped einsum ran 7x slower in bfloat16 than in float32, and
training steps 5-8x slower. So:

- `--mixed-precision auto` picks bf16, fp16 or float32 from the device;
- `--mixed-precision bf16|fp16` on a device without native support is
  refused with one line saying why and what to use instead.

Native support, as detected here:
- GPU (the first one TensorFlow sees), by CUDA compute capability: bfloat16
  from 8.0 (Ampere), float16 tensor cores from 7.0 (Volta);
- CPU, by instruction-set flags (`/proc/cpuinfo` on Linux, `sysctl` on macOS):
  bfloat16 with `avx512_bf16` or `amx_bf16` (x86) or `bf16` (Arm); float16
  with `avx512_fp16` or `amx_fp16` (x86) or `fphp` + `asimdhp` (Arm).
`auto` prefers bfloat16 (no loss scaling needed), then float16, else float32.
"""

from __future__ import annotations

import dataclasses
import platform
import subprocess
from pathlib import Path

AUTO = "auto"
CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")
CPU_FP16_FLAGS = ("avx512_fp16", "amx_fp16")
ARM_FP16_FLAGS = ("fphp", "asimdhp")  # both needed
GPU_BF16_CAPABILITY = (8, 0)
GPU_FP16_CAPABILITY = (7, 0)


class PrecisionError(ValueError):
    """A 16-bit precision the training device would only emulate, slowly."""


@dataclasses.dataclass(frozen=True)
class Device:
    """What the precision decision looks at: the device kind, its name and features."""

    kind: str  # "cpu" | "gpu"
    name: str
    cpu_flags: frozenset = frozenset()
    compute_capability: tuple | None = None

    def native(self, precision) -> bool:
        """True when `precision` ("bf16" or "fp16") runs natively on this device."""
        if self.kind == "gpu":
            needed = GPU_BF16_CAPABILITY if precision == "bf16" else GPU_FP16_CAPABILITY
            return self.compute_capability is not None and tuple(self.compute_capability) >= needed
        if precision == "bf16":
            return any(flag in self.cpu_flags for flag in CPU_BF16_FLAGS)
        return any(f in self.cpu_flags for f in CPU_FP16_FLAGS) or all(
            f in self.cpu_flags for f in ARM_FP16_FLAGS
        )

    def describe(self) -> str:
        """One line: the device and the features the decision used."""
        if self.kind == "gpu":
            capability = ".".join(map(str, self.compute_capability or ())) or "unknown"
            return f"GPU {self.name} (compute capability {capability})"
        relevant = sorted(
            f for f in self.cpu_flags
            if f in {*CPU_BF16_FLAGS, *CPU_FP16_FLAGS, *ARM_FP16_FLAGS, "avx2", "avx512f", "fma"}
        )  # fmt: skip
        return f"CPU {self.name} (flags: {' '.join(relevant) or 'none of note'})"


def parse_cpuinfo(text: str) -> tuple[str, frozenset]:
    """(model name, instruction flags) from Linux's /proc/cpuinfo text (x86 or Arm)."""
    name, flags = "", set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("model name", "hardware", "cpu model") and not name:
            name = value.strip()
        elif key in ("flags", "features") and not flags:
            flags = set(value.split())
    return name or platform.processor() or platform.machine(), frozenset(flags)


def _macos_cpu() -> tuple[str, frozenset]:
    def sysctl(key):
        try:
            return subprocess.run(["sysctl", "-n", key], capture_output=True, text=True,
                                  timeout=5).stdout.strip()  # fmt: skip
        except (OSError, subprocess.SubprocessError):
            return ""

    flags = set(sysctl("machdep.cpu.features").lower().split())
    flags |= set(sysctl("machdep.cpu.leaf7_features").lower().split())
    if sysctl("hw.optional.arm.FEAT_BF16") == "1":
        flags.add("bf16")
    if sysctl("hw.optional.arm.FEAT_FP16") == "1":
        flags |= set(ARM_FP16_FLAGS)
    return sysctl("machdep.cpu.brand_string") or platform.machine(), frozenset(flags)


def cpu_device(cpuinfo_path="/proc/cpuinfo") -> Device:
    """This machine's CPU, with its instruction flags."""
    path = Path(cpuinfo_path)
    if path.exists():
        name, flags = parse_cpuinfo(path.read_text(errors="replace"))
    elif platform.system() == "Darwin":
        name, flags = _macos_cpu()
    else:
        name, flags = platform.processor() or platform.machine(), frozenset()
    return Device("cpu", name, cpu_flags=flags)


def training_device() -> Device:
    """The device `train` computes on: the first GPU TensorFlow sees, else the CPU."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        capability = details.get("compute_capability")
        return Device("gpu", details.get("device_name", gpus[0].name),
                      compute_capability=tuple(capability) if capability else None)  # fmt: skip
    return cpu_device()


def resolve_precision(requested, device: Device):
    """(precision to train with: None | "bf16" | "fp16", one line saying why).

    `requested` None is the tutorial's float32, whatever the device. "auto"
    picks from the device. "bf16"/"fp16" are kept where native and raise
    `PrecisionError` where the device would only emulate them.
    """
    where = device.describe()
    if requested is None:
        return None, (f"float32 (the tutorial's; --mixed-precision auto, the default, picks "
                      f"for {where})")
    if requested == AUTO:
        for precision in ("bf16", "fp16"):
            if device.native(precision):
                return precision, f"{precision} (auto: native on {where})"
        return None, f"float32 (auto: no native bfloat16 or float16 on {where})"
    if requested not in ("bf16", "fp16"):
        raise PrecisionError(f"--mixed-precision must be auto, bf16 or fp16, got {requested!r}")
    if not device.native(requested):
        other = "fp16" if requested == "bf16" else "bf16"
        instead = f"{other}, which is native here" if device.native(other) else "float32 here"
        raise PrecisionError(
            f"--mixed-precision {requested}: {where} has no native "
            f"{'bfloat16' if requested == 'bf16' else 'float16'} arithmetic, so it would be "
            f"emulated and train several times slower than float32; use --mixed-precision "
            f"auto (picks {instead}) or float32"
        )
    return requested, f"{requested} (native on {where})"
