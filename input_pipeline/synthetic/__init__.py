"""Synthetic motion-language data in HumanML3D's exact folder format.

Procedural skeleton motions (walking, running, jumping, turning, waving, kicking,
squatting, sitting, throwing, crawling, dancing and more, each with its direction,
speed, body side and count) composed into sequences, converted with the real
HumanML3D feature extraction, and described by paraphrased captions.

  python -m input_pipeline.synthetic --out DIR --num-motions N --seed S [--preview ID]
"""
from input_pipeline.synthetic.dataset import generate_dataset

__all__ = ["generate_dataset"]
