"""Is there a GPU here that a CUDA build of embedkit could use? Asks the NVIDIA driver itself.

python/CMakeLists.txt runs this at configure time to decide whether the wheel gets the CUDA backend
(when nothing asked for it either way), and the CUDA-lane tests use it to know what a table must
report. It loads the driver's library, libcuda.so.1 (what the CUDA runtime loads), and asks it for
cuInit and cuDeviceGetCount: no toolkit, no nvidia-smi (absent from many containers that do have a
driver) and no compiler are needed, and a driver that is installed but has no device, or cannot
initialise, counts as none.

Prints one line, "<devices>;<why>", e.g. "1;NVIDIA driver 580.82 (CUDA 13.0), 1 device: NVIDIA H100"
or "0;no NVIDIA driver: libcuda.so.1 cannot be loaded (...)", and exits 0 either way.
"""
import ctypes
import sys
from typing import Tuple


def _error_name(lib: ctypes.CDLL, code: int) -> str:
    name = ctypes.c_char_p()
    if lib.cuGetErrorName(code, ctypes.byref(name)) == 0 and name.value:
        return name.value.decode()
    return f"CUresult {code}"


def probe() -> Tuple[int, str]:
    """The number of CUDA devices the driver reports, and why, in words."""
    try:
        lib = ctypes.CDLL("libcuda.so.1")
    except OSError as e:
        return 0, f"no NVIDIA driver: libcuda.so.1 cannot be loaded ({e})"
    code = lib.cuInit(0)
    if code != 0:
        return 0, f"the NVIDIA driver does not initialise (cuInit: {_error_name(lib, code)})"
    version = ctypes.c_int()
    driver = "NVIDIA driver"
    if lib.cuDriverGetVersion(ctypes.byref(version)) == 0:
        driver += f" (CUDA {version.value // 1000}.{version.value % 1000 // 10})"
    count = ctypes.c_int()
    code = lib.cuDeviceGetCount(ctypes.byref(count))
    if code != 0:
        return 0, f"the {driver} lists no device (cuDeviceGetCount: {_error_name(lib, code)})"
    if count.value == 0:
        return 0, f"the {driver} reports 0 devices"
    names = []
    for ordinal in range(count.value):
        device, name = ctypes.c_int(), ctypes.create_string_buffer(256)
        if lib.cuDeviceGet(ctypes.byref(device), ordinal) == 0 and lib.cuDeviceGetName(name, 256, device) == 0:
            names.append(name.value.decode(errors="replace"))
    listed = f": {', '.join(names)}" if names else ""
    return count.value, f"{driver}, {count.value} device{'s' if count.value > 1 else ''}{listed}"


if __name__ == "__main__":
    devices, why = probe()
    # CMake splits on ';': keep the reason free of them.
    print(f"{devices};{why.replace(';', ',')}")
    sys.exit(0)
