"""Accounting of dataset items left out while reading a split, and why.

A broken file must not stop a run over 29k clips, but it must not pass silently
either: each reason is logged once, with its first file, and counted.
"""
from __future__ import annotations

import dataclasses
import logging

logger = logging.getLogger("lexmo_jax.data")

# Reasons for a broken or unusable file.
MOTION_MISSING = "motion file missing"
MOTION_NOT_NUMPY = "motion file is not a numpy .npy file"
MOTION_CORRUPT = "motion file truncated or unreadable"
MOTION_NOT_FINITE = "motion has NaN or Inf values"
MOTION_WRONG_SHAPE = "motion has the wrong shape or feature width"
CAPTION_MISSING = "caption file missing"
CAPTION_UNREADABLE = "caption file unreadable (not UTF-8 text)"
CAPTION_EMPTY = "caption file empty"
CAPTION_MALFORMED = "caption file has no well-formed line (caption#tokens#start#end)"
CAPTION_LINE_MALFORMED = "malformed caption line skipped (file kept)"
DUPLICATE_ID = "id listed twice in the split file"
# Caption spans (#start#end, seconds) that do not fit their clip.
SPAN_NEGATIVE_START = "caption span starts before 0 s (line skipped)"
SPAN_EMPTY = "caption span has start >= end (line skipped)"
SPAN_OUTSIDE_CLIP = "caption span starts after the clip ends (line skipped)"
SPAN_END_CLAMPED = "caption span ends past the clip (end clamped to the clip's end)"
SPAN_WHOLE_CLIP = "caption span covers the whole clip (caption joined to the clip's item)"
# Reasons that are the T2M length filter, not a fault of the data.
MOTION_TOO_SHORT = "clip shorter than the shortest kept length (data.min_motion_length)"
MOTION_TOO_LONG = "clip not shorter than the given max_length"
SPAN_TOO_SHORT = "caption span shorter than the shortest kept length (data.min_motion_length)"
SPAN_TOO_LONG = "caption span not shorter than the given max_length"

LENGTH_FILTER_REASONS = frozenset(
    {MOTION_TOO_SHORT, MOTION_TOO_LONG, SPAN_TOO_SHORT, SPAN_TOO_LONG})
MAX_EXAMPLES = 3


@dataclasses.dataclass
class SkipReport:
  """Counts of skipped items per reason, with up to MAX_EXAMPLES files each.

  Attributes:
    counts: reason -> number of items (or lines, for CAPTION_LINE_MALFORMED).
    examples: reason -> up to MAX_EXAMPLES 'file: detail' strings.
    source: the folder or file the report is about, for messages.
  """
  counts: dict[str, int] = dataclasses.field(default_factory=dict)
  examples: dict[str, list[str]] = dataclasses.field(default_factory=dict)
  source: str = ""

  def add(self, reason: str, file: str, detail: str = "") -> None:
    """Counts one skipped item; the first of each reason is logged."""
    example = f"{file}: {detail}" if detail else str(file)
    if reason not in self.counts:
      level = logging.INFO if reason in LENGTH_FILTER_REASONS else logging.WARNING
      logger.log(level, "skipping %s: %s (further items skipped for this reason "
                 "are counted, not logged)", example, reason)
    self.counts[reason] = self.counts.get(reason, 0) + 1
    examples = self.examples.setdefault(reason, [])
    if len(examples) < MAX_EXAMPLES:
      examples.append(example)

  @property
  def total(self) -> int:
    return sum(self.counts.values())

  @property
  def problems(self) -> dict[str, int]:
    """Counts of the reasons that are faults of the data (not the length filter)."""
    return {r: n for r, n in self.counts.items() if r not in LENGTH_FILTER_REASONS}

  def merge(self, other: SkipReport) -> None:
    for reason, n in other.counts.items():
      self.counts[reason] = self.counts.get(reason, 0) + n
      examples = self.examples.setdefault(reason, [])
      for example in other.examples.get(reason, []):
        if len(examples) < MAX_EXAMPLES:
          examples.append(example)

  def summary(self) -> str:
    """One line per reason: count, then examples."""
    if not self.counts:
      return "nothing skipped"
    lines = []
    for reason in sorted(self.counts, key=lambda r: (-self.counts[r], r)):
      examples = "; ".join(self.examples.get(reason, []))
      lines.append(f"{self.counts[reason]:6d} x {reason} (e.g. {examples})")
    return "\n".join(lines)
