"""A submission's system description (``systems/<system>.json``): what this machine says about itself, and the rest
from a small JSON file the submitter fills in.

The inference submission checker requires 35 fields (:data:`FIELDS`). Read from the machine: the processor
(``/proc/cpuinfo``, ``/sys/devices/system/cpu``), memory (``/proc/meminfo``), storage capacity of the results'
file system, the operating system (``/etc/os-release``), GPUs (``nvidia-smi``), and the software of the runs
(framework and versions, from their ``results.json``). Everything else (cooling, networking, the status) is the
submitter's to say; a field left unknown is written as ``"unknown"`` and listed by :func:`unknown_fields`.

``is_network`` is left out unless the submitter's file sets it: the checker (v6.0) then treats the system as not
networked, where any value, even the string "false", makes it require thirteen network fields.

mlperf-sysinfo (MLCommons, on PyPI) captures the same description, but only as a pre-release that drives the
mlc-scripts automation (scripts fetched and run, probes over ssh); this reads the few files it needs instead.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

# The submission checker's required fields (SYSTEM_DESC_REQUIRED_FIELDS of its v5.1 and v6.0 constants), in order.
FIELDS = (
    "division", "submitter", "status", "system_name", "number_of_nodes", "host_processor_model_name",
    "host_processors_per_node", "host_processor_core_count", "host_memory_capacity", "host_storage_capacity",
    "host_storage_type", "accelerators_per_node", "accelerator_model_name", "accelerator_memory_capacity",
    "framework", "operating_system", "system_type", "other_software_stack", "host_processor_frequency",
    "host_processor_caches", "host_memory_configuration", "host_processor_interconnect", "host_networking",
    "host_networking_topology", "accelerator_frequency", "accelerator_host_interconnect", "accelerator_interconnect",
    "accelerator_interconnect_topology", "accelerator_memory_configuration", "accelerator_on-chip_memories",
    "cooling", "hw_notes", "sw_notes", "host_network_card_count", "system_type_detail",
)
STATUSES = ("available", "preview", "rdi")
SYSTEM_TYPES = ("datacenter", "edge", "datacenter,edge")
UNKNOWN = "unknown"


def _read(path: str) -> str:
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return ""


def processor() -> dict[str, Any]:
    """Model, sockets, cores, frequency and caches from /proc/cpuinfo and /sys (Linux); unknown elsewhere."""
    info = _read("/proc/cpuinfo")
    model = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")),
                 platform.processor() or UNKNOWN)
    sockets = {line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("physical id")}
    cores = set(_core_ids(info))
    mhz = _read("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq").strip()
    if mhz:
        frequency = f"{int(mhz) / 1000:.0f} MHz (maximum)"
    else:
        found = [line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("cpu MHz")]
        frequency = f"{float(found[0]):.0f} MHz (as read)" if found else UNKNOWN
    caches = []
    for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        level, kind, size = (_read(str(index / name)).strip() for name in ("level", "type", "size"))
        if level and size:
            caches.append(f"L{level}{ {'Data': ' data', 'Instruction': ' instruction'}.get(kind, '')} {size}")
    return {"host_processor_model_name": model, "host_processors_per_node": max(1, len(sockets)),
            "host_processor_core_count": len(cores) or os.cpu_count() or 1,
            "host_processor_frequency": frequency,
            "host_processor_caches": ", ".join(caches) if caches else UNKNOWN}


def _core_ids(cpuinfo: str) -> Iterable[tuple[str, str]]:
    socket = core = None
    for line in cpuinfo.splitlines() + [""]:
        if line.startswith("physical id"):
            socket = line.split(":", 1)[1].strip()
        elif line.startswith("core id"):
            core = line.split(":", 1)[1].strip()
        elif not line.strip():
            if core is not None:
                yield socket or "0", core
            socket = core = None


def memory() -> str:
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            return f"{int(line.split()[1]) / 1024 ** 2:.0f} GB"
    return UNKNOWN


def storage(path: str | os.PathLike) -> str:
    try:
        return f"{shutil.disk_usage(path).total / 1000 ** 3:.0f} GB"
    except OSError:
        return UNKNOWN


def operating_system() -> str:
    release = dict(line.split("=", 1) for line in _read("/etc/os-release").splitlines() if "=" in line)
    name = release.get("PRETTY_NAME", "").strip('"') or platform.system()
    return f"{name} (kernel {platform.release()})"


def accelerators() -> dict[str, Any]:
    """GPUs through nvidia-smi; none found is a CPU-only system ("N/A" where a field is about accelerators)."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10)
        rows = [line.split(",") for line in out.stdout.splitlines() if line.strip()] if out.returncode == 0 else []
    except (OSError, subprocess.SubprocessError):
        rows = []
    if not rows:
        # "0" as a string: the checker reads a field's value as "empty" when it is falsy, and the number 0 is.
        return {"accelerators_per_node": "0", "accelerator_model_name": "N/A", "accelerator_memory_capacity": "N/A",
                "accelerator_frequency": "N/A", "accelerator_host_interconnect": "N/A",
                "accelerator_interconnect": "N/A", "accelerator_interconnect_topology": "N/A",
                "accelerator_memory_configuration": "N/A", "accelerator_on-chip_memories": "N/A"}
    return {"accelerators_per_node": len(rows), "accelerator_model_name": rows[0][0].strip(),
            "accelerator_memory_capacity": rows[0][1].strip() if len(rows[0]) > 1 else UNKNOWN}


def software(runs: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """framework and other_software_stack from the runs' results.json: backends and package versions."""
    frameworks, packages, python = set(), {}, None
    for record in runs:
        backend = record.get("backend") or {}
        if backend.get("name"):
            frameworks.add(f"{backend['name']} {backend.get('version', '')}".strip())
        env = record.get("environment") or {}
        packages.update(env.get("packages") or {})
        python = python or env.get("python")
    stack = [f"Python {python}"] if python else []
    stack += [f"{name} {version}" for name, version in sorted(packages.items())]
    return {"framework": ", ".join(sorted(frameworks)) or UNKNOWN, "other_software_stack": ", ".join(stack) or UNKNOWN}


def describe(*, division: str, submitter: str, system_name: str, system_type: str, runs: Iterable[Mapping],
             results_path: str | os.PathLike = ".", overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The 35-field description: detected values, then ``overrides`` (the submitter's file) over them."""
    described: dict[str, Any] = {field: UNKNOWN for field in FIELDS}
    described.update(division=division, submitter=submitter, system_name=system_name, system_type=system_type,
                     status="available", number_of_nodes=1, host_memory_capacity=memory(),
                     host_storage_capacity=storage(results_path), operating_system=operating_system(),
                     host_network_card_count=UNKNOWN, hw_notes="", sw_notes="")
    described.update(processor())
    described.update(accelerators())
    described.update(software(runs))
    described.update(dict(overrides or {}))
    check(described)
    return described


def check(described: Mapping[str, Any]) -> None:
    """Refuse a description the checker would: a missing field, a status or system type it does not know."""
    missing = [field for field in FIELDS if field not in described]
    if missing:
        raise ValueError(f"the system description lacks {', '.join(missing)}")
    if described["status"] not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}, got {described['status']!r}")
    if described["system_type"] not in SYSTEM_TYPES:
        raise ValueError(f"system_type must be one of {', '.join(SYSTEM_TYPES)}, got {described['system_type']!r}")
    if described["division"] not in ("closed", "open"):
        raise ValueError(f"division must be closed or open, got {described['division']!r}")
    if "is_network" in described and not isinstance(described["is_network"], str):
        raise ValueError('is_network must be a string ("true" or "false"): the checker calls .lower() on it')


def unknown_fields(described: Mapping[str, Any]) -> list[str]:
    return [field for field in FIELDS if described.get(field) == UNKNOWN]


def read_overrides(path: str | os.PathLike | None) -> dict[str, Any]:
    """The submitter's file: a JSON object of fields (any of :data:`FIELDS`, and ``is_network``)."""
    if path is None:
        return {}
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable JSON object ({exc})") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object of system description fields")
    unknown = sorted(set(data) - set(FIELDS) - {"is_network", "submitter_contact"})
    if unknown:
        raise ValueError(f"{path}: fields the description does not have: {', '.join(unknown)}")
    return data
