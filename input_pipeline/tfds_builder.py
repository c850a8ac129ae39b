"""A tensorflow-datasets builder: a HumanML3D or KIT-ML folder as TFRecord shards.

Each example is one item of humanml3d.load_split (a clip or a caption span, after
the length filter): item_id, motion_id, motion (T, F) float32 raw features and
captions. Mean/Std and each split's skip counts are kept in the dataset's
metadata, so a prepared dataset needs nothing from the original folder.

  builder = prepare(manual_dir="HumanML3D", data_dir="~/tensorflow_datasets")
  pairs, mean, std = load_tfds_split("~/tensorflow_datasets", "train")
"""
from __future__ import annotations

if __name__ == "__main__":
  # Run as `python -m input_pipeline.tfds_builder`, this file is `__main__`, and
  # tensorflow-datasets would look for the builder's resources in a package called
  # `__main__` (and refuses a builder registered twice): run the module under its own name,
  # before this copy defines anything.
  from input_pipeline import tfds_builder  # pylint: disable=g-import-not-at-top
  raise SystemExit(tfds_builder.main())

import dataclasses
import pathlib

import numpy as np
import tensorflow_datasets as tfds

from input_pipeline import dataset_kinds, humanml3d
from input_pipeline.humanml3d import MotionTextPair

SPLITS = ("train", "val", "test")


@dataclasses.dataclass(eq=False)
class MotionTextConfig(tfds.core.BuilderConfig):
  """One dataset kind and its length filter (None: the kind's T2M minimum)."""
  kind: str = "humanml3d"
  min_length: int | None = None
  max_length: int | None = None


class LexmoMotionText(tfds.core.GeneratorBasedBuilder):
  """Motion-caption items of a HumanML3D or KIT-ML folder."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Items of humanml3d.load_split, Mean/Std in metadata."}
  BUILDER_CONFIGS = [
      MotionTextConfig(name="humanml3d", kind="humanml3d",
                       description="HumanML3D: 263-d features, 20 fps."),
      MotionTextConfig(name="kitml", kind="kitml",
                       description="KIT-ML: 251-d features, 12.5 fps."),
  ]
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      "Pass a HumanML3D or KIT-ML folder as manual_dir: it must hold "
      "new_joint_vecs/<id>.npy, texts/<id>.txt, train.txt/val.txt/test.txt, Mean.npy "
      "and Std.npy. `python -m input_pipeline.synthetic --out DIR` writes a synthetic one.")
  # Nothing is downloaded, so there are no checksums to find beside the code; the
  # lookup would also need importlib_resources, which tensorflow-datasets does not pin.
  code_path = None

  def _info(self) -> tfds.core.DatasetInfo:
    kind = dataset_kinds.get_kind(self.builder_config.kind)
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict({
            "item_id": tfds.features.Text(),
            "motion_id": tfds.features.Text(),
            "motion": tfds.features.Tensor(shape=(None, kind.feature_dim), dtype=np.float32),
            "captions": tfds.features.Sequence(tfds.features.Text()),
        }),
        metadata=tfds.core.MetadataDict(),
        # Items are written sorted by item_id; evaluation relies on that order.
        disable_shuffling=True,
    )

  def _split_generators(self, dl_manager):
    root = pathlib.Path(dl_manager.manual_dir)
    config = self.builder_config
    mean, std = humanml3d.load_normalisation(root, config.kind)
    self.info.metadata["mean"] = mean.tolist()
    self.info.metadata["std"] = std.tolist()
    self.info.metadata["skipped"] = {}
    splits = [s for s in SPLITS if (root / f"{s}.txt").is_file()]
    if "train" not in splits:
      raise humanml3d.DatasetError(f"{root} has no train.txt: "
                                   f"{self.MANUAL_DOWNLOAD_INSTRUCTIONS}")
    return {split: self._generate_examples(root, split) for split in splits}

  def _generate_examples(self, root: pathlib.Path, split: str):
    config = self.builder_config
    pairs, report = humanml3d.load_split(root, split, config.kind, config.min_length,
                                         config.max_length)
    self.info.metadata["skipped"][split] = dict(report.counts)
    for p in pairs:
      yield p.item_id, {"item_id": p.item_id, "motion_id": p.motion_id, "motion": p.motion,
                        "captions": list(p.captions)}


def prepare(manual_dir: str | pathlib.Path, data_dir: str | pathlib.Path,
            kind: str = "humanml3d") -> LexmoMotionText:
  """Writes (once) the TFRecord shards of every split of manual_dir under data_dir."""
  manual_dir = humanml3d.check_root(manual_dir)
  builder = LexmoMotionText(config=kind, data_dir=str(data_dir))
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir)))
  return builder


def load_tfds_split(data_dir: str | pathlib.Path, split: str, kind: str = "humanml3d"
                    ) -> tuple[list[MotionTextPair], np.ndarray, np.ndarray]:
  """Reads a prepared split back as items (sorted by item_id) and mean, std (F,)."""
  builder = LexmoMotionText(config=kind, data_dir=str(data_dir))
  if not builder.is_prepared():
    raise FileNotFoundError(
        f"no prepared {LexmoMotionText.name}/{kind} dataset under {data_dir}; run "
        "input_pipeline.tfds_builder.prepare(manual_dir, data_dir) first")
  if split not in builder.info.splits:
    raise humanml3d.DatasetError(f"split {split!r} is not in the prepared dataset under "
                                 f"{data_dir} (splits: {sorted(builder.info.splits)})")
  pairs = []
  for example in builder.as_dataset(split=split, shuffle_files=False).as_numpy_iterator():
    pairs.append(MotionTextPair(
        item_id=example["item_id"].decode(), motion_id=example["motion_id"].decode(),
        motion=np.asarray(example["motion"], np.float32),
        captions=tuple(c.decode() for c in example["captions"])))
  pairs.sort(key=lambda p: p.item_id)
  mean = np.asarray(builder.info.metadata["mean"], np.float32)
  std = np.asarray(builder.info.metadata["std"], np.float32)
  return pairs, mean, std


def main(argv=None) -> int:
  import argparse  # pylint: disable=g-import-not-at-top
  parser = argparse.ArgumentParser(
      prog="python -m input_pipeline.tfds_builder",
      description="Write TFRecord shards of a HumanML3D or KIT-ML folder (train with "
                  "--config.data.tfds_dir=DATA_DIR).")
  parser.add_argument("manual_dir", help="the dataset folder (HumanML3D format)")
  parser.add_argument("data_dir", help="where the tensorflow-datasets shards go")
  parser.add_argument("--kind", choices=("humanml3d", "kitml"), default="humanml3d")
  args = parser.parse_args(argv)
  try:
    builder = prepare(args.manual_dir, args.data_dir, args.kind)
  except (humanml3d.DatasetError, FileNotFoundError) as e:
    print(f"error: {e}")
    return 2
  print(f"prepared {builder.info.full_name} under {args.data_dir}: "
        + ", ".join(f"{name} {split.num_examples}" for name, split in builder.info.splits.items()))
  return 0
