"""Skeleton constants of HumanML3D (22 SMPL joints) and KIT-ML (21 MMM joints), and the
geometry on them. `input_pipeline.dataset_kinds` gathers them, per dataset kind, with the
rest of its facts.

The kinematic chains, raw offsets and special joints are those of the T2M code
(`paramUtil.py` and the `motion_representation` script of HumanML3D), so that
features computed here match the published datasets index for index.

A chain is a list of joint indices from a parent to its descendants; the first
joint of a chain is already placed by an earlier chain (or is the root). Raw
offsets are the unit rest directions of each joint from its parent; a target
skeleton's offsets are those directions scaled by its bone lengths.
"""
from collections.abc import Sequence

import numpy as np

Chains = tuple[tuple[int, ...], ...]

# ---------------------------------------------------------------- HumanML3D --

HUMANML3D_JOINT_NAMES = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee",
    "spine2", "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot",
    "neck", "left_collar", "right_collar", "head", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
)

# Order matters: MotionPatches groups joints by these five chains in this order.
HUMANML3D_KINEMATIC_CHAINS: Chains = (
    (0, 2, 5, 8, 11),  # root -> right leg
    (0, 1, 4, 7, 10),  # root -> left leg
    (0, 3, 6, 9, 12, 15),  # root -> spine -> head
    (9, 14, 17, 19, 21),  # spine3 -> right arm
    (9, 13, 16, 18, 20),  # spine3 -> left arm
)

HUMANML3D_RAW_OFFSETS = np.array([
    [0, 0, 0], [1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, -1, 0],
    [0, 1, 0], [0, -1, 0], [0, -1, 0], [0, 1, 0], [0, 0, 1], [0, 0, 1],
    [0, 1, 0], [1, 0, 0], [-1, 0, 0], [0, 0, 1], [0, -1, 0], [0, -1, 0],
    [0, -1, 0], [0, -1, 0], [0, -1, 0], [0, -1, 0],
], dtype=np.float64)

# First 22 joints of the SMPL-H pose HumanML3D retargets every clip to (its
# example clip 000021, frame 0), in metres. Only its bone lengths are used.
HUMANML3D_TARGET_SKELETON = np.array([
    [-0.032778795808553696, 0.9845883250236511, 0.8220340013504028],
    [-0.05078006535768509, 0.899807870388031, 0.7662444710731506],
    [-0.029623907059431076, 0.8932549357414246, 0.8830472230911255],
    [-0.0827392190694809, 1.1062910556793213, 0.823647677898407],
    [-0.04644011706113815, 0.5086480975151062, 0.7224903702735901],
    [-0.05053192377090454, 0.5060234069824219, 0.9261917471885681],
    [-0.056224189698696136, 1.2467718124389648, 0.8155515193939209],
    [-0.12119458615779877, 0.08446693420410156, 0.7609673738479614],
    [-0.10520601272583008, 0.08556050062179565, 0.8888561725616455],
    [-0.05220288038253784, 1.3039767742156982, 0.8170124292373657],
    [-0.00019541755318641663, 0.028704404830932617, 0.7079759836196899],
    [0.029135722666978836, 0.027199983596801758, 0.9183927178382874],
    [-0.06975682079792023, 1.522566318511963, 0.8224256634712219],
    [-0.07016853988170624, 1.4177966117858887, 0.742013156414032],
    [-0.058984074741601944, 1.4234843254089355, 0.8959465622901917],
    [-0.0015960969030857086, 1.5913610458374023, 0.7872335910797119],
    [-0.10370944440364838, 1.4016003608703613, 0.615779459476471],
    [-0.055603042244911194, 1.4214637279510498, 1.01886785030365],
    [-0.13465546071529388, 1.1467429399490356, 0.608241081237793],
    [-0.09778346121311188, 1.1646476984024048, 1.0573854446411133],
    [-0.05406394973397255, 0.8948581218719482, 0.5795830488204956],
    [-0.009182747453451157, 0.9147475957870483, 1.1077156066894531],
], dtype=np.float64)

HUMANML3D_FOOT_RIGHT = (8, 11)  # right ankle, right foot
HUMANML3D_FOOT_LEFT = (7, 10)  # left ankle, left foot
# (r_hip, l_hip, sdr_r, sdr_l): across = hips + shoulders gives the facing.
HUMANML3D_FACE_JOINTS = (2, 1, 17, 16)
# Knee and ankle: their offsets' lengths give the leg length used for scaling.
HUMANML3D_LOWER_LEGS = (5, 8)
HUMANML3D_LEFT_JOINTS = (1, 4, 7, 10, 13, 16, 18, 20)
HUMANML3D_RIGHT_JOINTS = (2, 5, 8, 11, 14, 17, 19, 21)

# ------------------------------------------------------------------- KIT-ML --

# Master Motor Map names. T2M's face and foot indices call joints 11 and 5
# "right" although MMM names them left; the indices below are T2M's, so the
# features agree with the released KIT-ML files.
KITML_JOINT_NAMES = (
    "root", "BP", "BT", "BLN", "BUN", "LS", "LE", "LW", "RS", "RE", "RW",
    "LH", "LK", "LA", "LMrot", "LF", "RH", "RK", "RA", "RMrot", "RF",
)

KITML_KINEMATIC_CHAINS: Chains = (
    (0, 11, 12, 13, 14, 15),  # root -> leg (T2M's "right")
    (0, 16, 17, 18, 19, 20),  # root -> leg (T2M's "left")
    (0, 1, 2, 3, 4),  # root -> spine -> head
    (3, 5, 6, 7),  # neck -> arm (T2M's "right")
    (3, 8, 9, 10),  # neck -> arm (T2M's "left")
)

KITML_RAW_OFFSETS = np.array([
    [0, 0, 0], [0, 1, 0], [0, 1, 0], [0, 1, 0], [0, 1, 0], [1, 0, 0],
    [0, -1, 0], [0, -1, 0], [-1, 0, 0], [0, -1, 0], [0, -1, 0], [1, 0, 0],
    [0, -1, 0], [0, -1, 0], [0, 0, 1], [0, 0, 1], [-1, 0, 0], [0, -1, 0],
    [0, -1, 0], [0, 0, 1], [0, 0, 1],
], dtype=np.float64)

# KIT-ML's own target (its clip 03950, frame 0) is not available here. These
# bone lengths are typical adult values in KIT's unit, millimetres, laid along
# the raw offsets; callers with the real skeleton pass it instead.
KITML_BONE_LENGTHS_MM = np.array([
    0.0,  # root
    60.0, 180.0, 260.0, 150.0,  # pelvis, torso, lower neck, upper neck
    190.0, 290.0, 250.0,  # shoulder, upper arm, forearm
    190.0, 290.0, 250.0,
    90.0, 450.0, 440.0, 150.0, 60.0,  # hip, thigh, shank, foot, toes
    90.0, 450.0, 440.0, 150.0, 60.0,
], dtype=np.float64)

KITML_FOOT_RIGHT = (14, 15)
KITML_FOOT_LEFT = (19, 20)
KITML_FACE_JOINTS = (11, 16, 5, 8)
KITML_LOWER_LEGS = (17, 18)
KITML_LEFT_JOINTS = (5, 6, 7, 11, 12, 13, 14, 15)
KITML_RIGHT_JOINTS = (8, 9, 10, 16, 17, 18, 19, 20)


# ---------------------------------------------------------------- functions --

def parents(chains: Sequence[Sequence[int]], num_joints: int) -> np.ndarray:
  """Parent index of every joint, -1 for the root: (num_joints,) int."""
  out = np.full((num_joints,), -1, dtype=np.int64)
  for chain in chains:
    for parent, child in zip(chain[:-1], chain[1:]):
      out[child] = parent
  return out


def bone_lengths(joints: np.ndarray, chains: Sequence[Sequence[int]]) -> np.ndarray:
  """Length of the bone ending at each joint.

  Args:
    joints: (..., J, 3) joint positions.
    chains: kinematic chains over the J joints.
  Returns:
    (..., J) lengths; the root's entry is 0.
  """
  joints = np.asarray(joints, dtype=np.float64)
  if joints.ndim < 2 or joints.shape[-1] != 3:
    raise ValueError(f"joints must have shape (..., J, 3), got {joints.shape}")
  parent = parents(chains, joints.shape[-2])
  has_parent = parent >= 0
  lengths = np.linalg.norm(joints - joints[..., np.maximum(parent, 0), :], axis=-1)
  return np.where(has_parent, lengths, 0.0)


def skeleton_from_lengths(raw_offsets: np.ndarray, chains: Sequence[Sequence[int]],
                          lengths: np.ndarray) -> np.ndarray:
  """Rest pose built by laying each bone along its raw offset: (J, 3).

  The root stands at the height that puts the lowest joint on y = 0.
  """
  joints = np.zeros_like(raw_offsets, dtype=np.float64)
  for chain in chains:
    for parent, child in zip(chain[:-1], chain[1:]):
      joints[child] = joints[parent] + raw_offsets[child] * lengths[child]
  joints[:, 1] -= joints[:, 1].min()
  return joints


KITML_TARGET_SKELETON = skeleton_from_lengths(
    KITML_RAW_OFFSETS, KITML_KINEMATIC_CHAINS, KITML_BONE_LENGTHS_MM)


def swap_permutation(num_joints: int, left: Sequence[int],
                     right: Sequence[int]) -> tuple[int, ...]:
  """(J,) index map that swaps each left joint with its right one."""
  perm = list(range(num_joints))
  for l, r in zip(left, right):
    perm[l], perm[r] = r, l
  return tuple(perm)
