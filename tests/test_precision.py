"""`--mixed-precision auto` and the refusal of emulated 16-bit floats, with the device mocked."""

import pytest

from tftransformer.cli import main
from tftransformer.runs.precision import (
    Device,
    PrecisionError,
    cpu_device,
    parse_cpuinfo,
    resolve_precision,
)

X86_CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 7B13
flags\t\t: fpu sse2 avx avx2 fma avx512f
processor\t: 1
model name\t: AMD EPYC 7B13
flags\t\t: fpu sse2 avx avx2 fma avx512f
"""
ARM_CPUINFO = """processor\t: 0
BogoMIPS\t: 50.00
Features\t: fp asimd fphp asimdhp bf16 i8mm
CPU implementer\t: 0x41
"""

AVX2_CPU = Device("cpu", "AMD EPYC", cpu_flags=frozenset({"avx2", "fma"}))
BF16_CPU = Device("cpu", "Xeon", cpu_flags=frozenset({"avx512f", "avx512_bf16", "amx_bf16"}))
FP16_ONLY_CPU = Device("cpu", "odd", cpu_flags=frozenset({"avx512_fp16"}))


def gpu(capability):
    return Device("gpu", "NVIDIA test", compute_capability=capability)


def test_cpuinfo_is_parsed_on_x86_and_arm():
    name, flags = parse_cpuinfo(X86_CPUINFO)
    assert name == "AMD EPYC 7B13" and {"avx2", "fma", "avx512f"} <= flags
    assert "avx512_bf16" not in flags
    _name, arm_flags = parse_cpuinfo(ARM_CPUINFO)
    device = Device("cpu", "arm", cpu_flags=arm_flags)
    assert device.native("bf16") and device.native("fp16")


def test_this_machines_cpu_is_detected():
    device = cpu_device()
    assert device.kind == "cpu" and device.name
    assert "CPU" in device.describe()


@pytest.mark.parametrize(
    "device, expected",
    [
        (AVX2_CPU, None),
        (BF16_CPU, "bf16"),
        (FP16_ONLY_CPU, "fp16"),
        (gpu((9, 0)), "bf16"),
        (gpu((8, 0)), "bf16"),
        (gpu((7, 5)), "fp16"),
        (gpu((6, 1)), None),
        (gpu(None), None),
    ],
)
def test_auto_picks_from_the_device(device, expected):
    precision, why = resolve_precision("auto", device)
    assert precision == expected
    assert why.startswith(f"{expected or 'float32'} (auto")


def test_no_flag_stays_the_tutorials_float32_everywhere():
    for device in (AVX2_CPU, BF16_CPU, gpu((9, 0))):
        assert resolve_precision(None, device)[0] is None


def test_native_requests_are_kept():
    assert resolve_precision("bf16", BF16_CPU)[0] == "bf16"
    assert resolve_precision("fp16", gpu((7, 0)))[0] == "fp16"
    assert resolve_precision("bf16", gpu((8, 6)))[0] == "bf16"


@pytest.mark.parametrize(
    "requested, device, instead",
    [
        ("bf16", AVX2_CPU, "float32 here"),
        ("fp16", AVX2_CPU, "float32 here"),
        ("bf16", gpu((7, 5)), "fp16, which is native here"),
        ("fp16", BF16_CPU, "bf16, which is native here"),
    ],
)
def test_emulated_precisions_are_refused_saying_what_to_use(requested, device, instead):
    with pytest.raises(PrecisionError) as raised:
        resolve_precision(requested, device)
    message = str(raised.value)
    assert message.startswith(f"--mixed-precision {requested}: ")
    assert "--mixed-precision auto" in message and instead in message
    assert "\n" not in message


def test_train_refuses_bf16_before_writing_anything(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("tftransformer.runs.train.training_device", lambda: AVX2_CPU)
    out = tmp_path / "run"
    assert main(["train", "--out", str(out), "--mixed-precision", "bf16", "--limit", "8"]) == 2
    err = capsys.readouterr().err.strip()
    assert "no native bfloat16" in err and "AMD EPYC" in err and err.count("\n") == 0
    assert not out.exists()
