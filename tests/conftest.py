"""Test setup: eight fake CPU devices, set before JAX starts, so meshes can be tested here."""
import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED_SAMPLE = ROOT.parent / "shared" / "data" / "humanml3d_sample"


@pytest.fixture(scope="session")
def humanml3d_sample_dir():
  if not SHARED_SAMPLE.exists():
    raise FileNotFoundError(
        f"{SHARED_SAMPLE} is missing: the tests read the real HumanML3D sample files from "
        "../shared/data/humanml3d_sample beside the project root.")
  return SHARED_SAMPLE
