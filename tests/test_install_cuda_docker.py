"""install_cuda_docker.sh against a fake /etc/os-release and stub commands first on PATH: the steps --dry-run
prints on a fresh host and on one already set up (none then, but the check), and its refusals."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "install_cuda_docker.sh"
CODENAMES = {"20.04": "focal", "22.04": "jammy", "24.04": "noble"}

# Stubs: read-only queries answer from the environment; anything that would change the host records its call.
STUBS = {
    "nvidia-smi": '[ "$STUB_DRIVER" = 1 ] || exit 9; echo 550.54.15',
    "dpkg": 'if [ "$1" = --print-architecture ]; then echo amd64; exit 0; fi\n'
            'case " $STUB_INSTALLED " in *" $2 "*) exit 0 ;; *) exit 1 ;; esac',
    "docker": 'if [ "$1" = info ]; then [ "$STUB_RUNTIME" = 1 ] && echo \'{"nvidia":{},"runc":{}}\' '
              '|| echo \'{"runc":{}}\'; exit 0; fi\necho "docker $*" >> "$STUB_LOG"',
    "id": 'echo "${STUB_UID:-0}"',
}
CHANGING = ["apt-get", "curl", "gpg", "systemctl", "nvidia-ctk", "install", "chmod"]


@pytest.fixture
def host(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in {**STUBS, **{c: 'echo "$0 $*" >> "$STUB_LOG"' for c in CHANGING}}.items():
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    log = tmp_path / "calls.log"
    log.touch()

    def run(*args, os_id="ubuntu", version="22.04", driver=True, installed=(), runtime=False, uid=0):
        release = tmp_path / "os-release"
        release.write_text(f'ID={os_id}\nVERSION_ID="{version}"\nVERSION_CODENAME={CODENAMES.get(version, "x")}\n'
                           f'PRETTY_NAME="{os_id} {version}"\n')
        env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", OS_RELEASE=str(release), STUB_LOG=str(log),
                   STUB_DRIVER=str(int(driver)), STUB_INSTALLED=" ".join(installed), STUB_RUNTIME=str(int(runtime)),
                   STUB_UID=str(uid))
        proc = subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=60)
        steps = [line[2:] for line in proc.stdout.splitlines() if line.startswith("+ ")]
        return proc, steps, log.read_text()

    return run


@pytest.mark.parametrize("version", sorted(CODENAMES))
def test_dry_run_on_a_fresh_host_prints_every_step_and_changes_nothing(host, version):
    proc, steps, calls = host("--dry-run", version=version)
    assert proc.returncode == 0, proc.stderr
    assert calls == ""  # no stub that changes the host was called
    docker_list = next(s for s in steps if "docker.list" in s)
    assert f"https://download.docker.com/linux/ubuntu {CODENAMES[version]} stable" in docker_list
    assert "arch=amd64" in docker_list
    for expected in ["apt-get install -y docker-ce docker-ce-cli containerd.io docker-buildx-plugin",
                     "apt-get install -y nvidia-container-toolkit", "nvidia-ctk runtime configure --runtime=docker",
                     "systemctl restart docker", "docker run --rm --gpus all nvidia/cuda:12.4.1-base-ubuntu22.04 "
                     "nvidia-smi"]:
        assert expected in steps
    assert not any("nvidia-docker" in s for s in steps)
    assert "NVIDIA driver: 550.54.15" in proc.stdout


def test_a_host_already_set_up_gets_no_change(host):
    proc, steps, _ = host("--dry-run", installed=("docker-ce", "nvidia-container-toolkit"), runtime=True)
    assert proc.returncode == 0, proc.stderr
    assert steps == ["docker run --rm --gpus all nvidia/cuda:12.4.1-base-ubuntu22.04 nvidia-smi"]  # the check only
    assert proc.stdout.count("already") == 3


def test_the_obsolete_nvidia_docker2_is_removed(host):
    proc, steps, _ = host("--dry-run", installed=("docker-ce", "nvidia-docker2"))
    assert "apt-get remove -y nvidia-docker2" in steps and "obsolete" in proc.stdout


@pytest.mark.parametrize("os_id, version", [("ubuntu", "18.04"), ("debian", "12"), ("ubuntu", "23.10")])
def test_unsupported_os_is_refused_in_one_line(host, os_id, version):
    proc, steps, _ = host("--dry-run", os_id=os_id, version=version)
    assert proc.returncode == 1 and not steps
    assert proc.stderr.strip() == (f"install_cuda_docker.sh: error: unsupported OS '{os_id} {version}': this script "
                                   "sets up Ubuntu 20.04, 22.04, 24.04 only")


def test_missing_driver_is_explained(host):
    proc, _, _ = host("--dry-run", driver=False)
    assert proc.returncode == 1
    assert "no working NVIDIA driver" in proc.stderr and "ubuntu-drivers install" in proc.stderr


def test_real_run_needs_root_and_bad_flags_are_usage_errors(host):
    proc, _, calls = host(uid=1000)
    assert proc.returncode == 1 and "run it as root" in proc.stderr and calls == ""
    proc, _, _ = host("--force")
    assert proc.returncode == 2 and "unknown argument '--force'" in proc.stderr
