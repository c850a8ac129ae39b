"""The paper's retrieval tables in its layout: the rows trained here, then the published ones.

Table 1 is HumanML3D, Table 2 KIT-ML, Table 5 the text-encoder ablation (dense MotionPatches
with DistilBERT or a T5 text tower, HumanML3D), all with TMR's protocols; the columns are t2m and m2t
R@1, R@2, R@3, R@5, R@10 and MedR (`retrieval.METRIC_NAMES`). The published block holds the
numbers the paper reports (protocol "All"); a cell it does not report is shown as "–".
"""
from __future__ import annotations

from typing import Mapping

from lexmo_jax.evaluation.retrieval import DIRECTIONS, METRIC_NAMES, format_table

PROTOCOL_TITLES = {"all": "All (every test item a candidate)",
                   "small_batches": "Small batches (random batches of 32)"}

# Published numbers, protocol "All": {dataset kind: {row: {metric: value}}}.
PUBLISHED = {
    "humanml3d": {
        "TMR": {"t2m/R@1": 8.92, "t2m/R@5": 22.06, "t2m/R@10": 33.37, "t2m/MedR": 25.0,
                "m2t/R@1": 9.44, "m2t/R@10": 32.21, "m2t/MedR": 26.0},
        "MotionPatches": {"t2m/R@1": 10.80, "t2m/R@5": 26.72, "t2m/R@10": 38.02,
                          "t2m/MedR": 19.0, "m2t/R@1": 11.25, "m2t/R@10": 37.40,
                          "m2t/MedR": 20.5},
        "†TMR": {"t2m/R@1": 7.83},
        "†MotionPatches": {"t2m/R@1": 9.13},
        "lexical (four phases)": {"t2m/R@1": 11.80, "t2m/R@5": 30.81, "t2m/R@10": 43.36,
                                  "t2m/MedR": 14.0, "m2t/R@1": 12.39, "m2t/R@10": 40.34,
                                  "m2t/MedR": 17.0},
    },
    "kitml": {
        "lexical (four phases)": {"t2m/R@1": 15.13, "t2m/R@10": 54.12, "t2m/MedR": 8.0},
    },
}

# Table 5, HumanML3D, protocol "All": the paper reports t2m R@1 of its Small and XXL towers.
PUBLISHED_TEXT_ENCODERS = {
    "humanml3d": {
        "DistilBERT": {"t2m/R@1": 10.80},
        "T5-Small": {"t2m/R@1": 4.40},
        "T5-XXL": {"t2m/R@1": 8.41},
    },
}

TABLE_NUMBERS = {"humanml3d": 1, "kitml": 2}
TITLES = {"retrieval": "text↔motion retrieval",
          "text_encoders": "text encoders of the dense MotionPatches baseline"}


def published_table(kind: str, table: str = "retrieval") -> str:
  """The published rows of `kind` and `table` as a Markdown table ('–' where the paper gives
  no number)."""
  rows = (PUBLISHED if table == "retrieval" else PUBLISHED_TEXT_ENCODERS).get(kind, {})
  header = ["method"] + [f"{d} {m}" for d in DIRECTIONS for m in METRIC_NAMES]
  lines = ["| " + " | ".join(header) + " |",
           "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
  for name, metrics in rows.items():
    cells = [f"{metrics[f'{d}/{m}']:.2f}" if f"{d}/{m}" in metrics else "–"
             for d in DIRECTIONS for m in METRIC_NAMES]
    lines.append("| " + " | ".join([name] + cells) + " |")
  return "\n".join(lines)


def format_retrieval_table(rows: Mapping[str, Mapping[str, Mapping[str, float]]], kind: str,
                           context: str, table: str = "retrieval") -> str:
  """The trained rows, one block per protocol, then the published block, as Markdown.

  Args:
    rows: {row name: {protocol: metrics}} (`reproduce`'s `rows`).
    kind: 'humanml3d' or 'kitml' (which published table follows).
    context: one line saying what was trained on what (data, scale).
    table: 'retrieval' (Table 1 or 2) or 'text_encoders' (Table 5).
  """
  number = TABLE_NUMBERS.get(kind, 1) if table == "retrieval" else 5
  parts = [f"## Table {number}: {TITLES[table]}, {context}"]
  protocols = [p for p in PROTOCOL_TITLES if any(p in r for r in rows.values())]
  for protocol in protocols:
    block = {name: r[protocol] for name, r in rows.items() if protocol in r}
    parts += ["", f"### {PROTOCOL_TITLES[protocol]}", "",
              format_table(block, first_column="method")]
  parts += ["", f"### Published (the paper's Table {number}, "
            f"{'HumanML3D' if kind == 'humanml3d' else 'KIT-ML'}, protocol All; "
            "a different dataset and scale from the rows above)", "",
            published_table(kind, table)]
  return "\n".join(parts)
