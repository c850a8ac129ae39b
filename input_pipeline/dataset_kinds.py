"""The facts of each dataset kind, in one place: HumanML3D (22 SMPL joints, 20 fps) and KIT-ML
(21 MMM joints, 12.5 fps).

The reader, the feature extraction, the motion tokens, the configs and `check` all read them
here: joint names and count, kinematic chains, fps, the feature width and its named slices,
the T2M length limits, the mirror permutation and the feature extraction's constants (target
skeleton, foot and facing joints, foot-contact threshold). The per-dataset constants behind
them are `input_pipeline.motion.skeleton`'s.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from input_pipeline.motion import skeleton as skel


@dataclasses.dataclass(frozen=True)
class DatasetKind:
  """Everything that differs between HumanML3D and KIT-ML.

  Attributes:
    name: 'humanml3d' or 'kitml'.
    joint_names: (J,) names, in the order of the joint axis.
    kinematic_chains: chains of joint indices (`input_pipeline.motion.skeleton`).
    raw_offsets: (J, 3) unit rest directions from parent to joint.
    target_skeleton: (J, 3) joint positions whose bone lengths all clips are retargeted to.
    foot_right, foot_left: joints whose speed decides foot contact.
    face_joints: (r_hip, l_hip, sdr_r, sdr_l) in T2M's naming.
    lower_legs: two joints whose offsets sum to the leg length.
    left_joints, right_joints: the body's left and right joints, in matching order (the
      mirror swaps each with its partner; drawings colour the sides apart).
    feet_threshold: squared displacement per frame below which a foot is in contact (the
      dataset's own value, in its units).
    fps: frames per second of the features (caption spans are in seconds).
    min_length: the T2M loaders' shortest kept clip, in frames (config.data.min_motion_length).
    max_length: the T2M loaders' max_motion_length: longer clips are randomly cropped to it
      for training (frames; config.data.max_motion_length).
  """
  name: str
  joint_names: tuple[str, ...]
  kinematic_chains: skel.Chains
  raw_offsets: np.ndarray
  target_skeleton: np.ndarray
  foot_right: tuple[int, int]
  foot_left: tuple[int, int]
  face_joints: tuple[int, int, int, int]
  lower_legs: tuple[int, int]
  left_joints: tuple[int, ...]
  right_joints: tuple[int, ...]
  feet_threshold: float
  fps: float
  min_length: int
  max_length: int

  @property
  def num_joints(self) -> int:
    """J."""
    return len(self.joint_names)

  @property
  def feature_dim(self) -> int:
    """F = 4 root values + 3(J-1) positions + 6(J-1) rotations + 3J velocities + 4 contacts
    (263 for HumanML3D, 251 for KIT-ML)."""
    return feature_dim(self.num_joints)

  def feature_groups(self) -> dict[str, slice]:
    """The named slices of the F-d feature vector, in order (HumanML3D's layout)."""
    return feature_groups(self.num_joints)

  def describe_features(self, indices) -> str:
    """Feature indices as ranges with their group in the F-d layout, e.g.
    '259–262 (foot_contacts), 0 (root_angular_velocity)'."""
    wanted = sorted(set(int(i) for i in indices))
    parts = []
    for name, cut in self.feature_groups().items():
      runs: list[list[int]] = []
      for i in (i for i in wanted if cut.start <= i < cut.stop):
        if runs and i == runs[-1][1] + 1:
          runs[-1][1] = i
        else:
          runs.append([i, i])
      parts += [f"{a}–{b} ({name})" if a != b else f"{a} ({name})" for a, b in runs]
    return ", ".join(parts)

  @property
  def mirror_permutation(self) -> tuple[int, ...]:
    """(J,) index map swapping left and right joints."""
    return skel.swap_permutation(self.num_joints, self.left_joints, self.right_joints)

  @property
  def parents(self) -> np.ndarray:
    """(J,) parent index of every joint, -1 for the root."""
    return skel.parents(self.kinematic_chains, self.num_joints)

  def offsets(self, target_skeleton: np.ndarray | None = None) -> np.ndarray:
    """Raw offsets scaled by the target's bone lengths: (J, 3)."""
    target = self.target_skeleton if target_skeleton is None else target_skeleton
    return self.raw_offsets * skel.bone_lengths(target, self.kinematic_chains)[:, None]


def feature_dim(num_joints: int) -> int:
  """Width of a feature vector for num_joints joints (263 for 22, 251 for 21)."""
  return 4 + 9 * (num_joints - 1) + 3 * num_joints + 4


def feature_groups(num_joints: int) -> dict[str, slice]:
  """Where each part of HumanML3D's feature layout lies, for num_joints joints."""
  j = num_joints
  sizes = {"root_angular_velocity": 1, "root_linear_velocity": 2, "root_height": 1,
           "joint_positions": 3 * (j - 1), "joint_rotations": 6 * (j - 1),
           "joint_velocities": 3 * j, "foot_contacts": 4}
  groups, start = {}, 0
  for name, size in sizes.items():
    groups[name] = slice(start, start + size)
    start += size
  return groups


# T2M's loaders (Guo et al. 2022) keep HumanML3D clips from 40 frames and KIT-ML clips from
# 24, and crop both to 196.
DATASET_KINDS = {
    "humanml3d": DatasetKind(
        name="humanml3d",
        joint_names=skel.HUMANML3D_JOINT_NAMES,
        kinematic_chains=skel.HUMANML3D_KINEMATIC_CHAINS,
        raw_offsets=skel.HUMANML3D_RAW_OFFSETS,
        target_skeleton=skel.HUMANML3D_TARGET_SKELETON,
        foot_right=skel.HUMANML3D_FOOT_RIGHT,
        foot_left=skel.HUMANML3D_FOOT_LEFT,
        face_joints=skel.HUMANML3D_FACE_JOINTS,
        lower_legs=skel.HUMANML3D_LOWER_LEGS,
        left_joints=skel.HUMANML3D_LEFT_JOINTS,
        right_joints=skel.HUMANML3D_RIGHT_JOINTS,
        feet_threshold=0.002,
        fps=20.0,
        min_length=40,
        max_length=196,
    ),
    "kitml": DatasetKind(
        name="kitml",
        joint_names=skel.KITML_JOINT_NAMES,
        kinematic_chains=skel.KITML_KINEMATIC_CHAINS,
        raw_offsets=skel.KITML_RAW_OFFSETS,
        target_skeleton=skel.KITML_TARGET_SKELETON,
        foot_right=skel.KITML_FOOT_RIGHT,
        foot_left=skel.KITML_FOOT_LEFT,
        face_joints=skel.KITML_FACE_JOINTS,
        lower_legs=skel.KITML_LOWER_LEGS,
        left_joints=skel.KITML_LEFT_JOINTS,
        right_joints=skel.KITML_RIGHT_JOINTS,
        # T2M's KIT-ML processing passes 0.05 (its positions are in millimetres).
        feet_threshold=0.05,
        fps=12.5,
        min_length=24,
        max_length=196,
    ),
}


def get_kind(kind: str | DatasetKind) -> DatasetKind:
  """The facts of 'humanml3d' or 'kitml' (a DatasetKind is returned as it is)."""
  if isinstance(kind, DatasetKind):
    return kind
  if kind not in DATASET_KINDS:
    raise ValueError(f"unknown dataset kind {kind!r}; expected one of {sorted(DATASET_KINDS)}")
  return DATASET_KINDS[kind]


def kind_for_joint_count(num_joints: int) -> DatasetKind:
  """The dataset kind with num_joints joints (22 HumanML3D, 21 KIT-ML)."""
  for kind in DATASET_KINDS.values():
    if kind.num_joints == num_joints:
      return kind
  raise ValueError(
      f"no dataset kind has {num_joints} joints; expected 22 (humanml3d) or 21 (kitml)")
