"""Text files as the field's datasets are meant to be read, wherever they were made.

Split lists (`train.txt`) and caption files (`texts/<id>.txt`) come from other machines and
editors: a UTF-8 byte-order mark, CRLF or CR line ends, blank lines and ids padded with spaces
or tabs all occur in the wild and mean nothing. Bytes that are not UTF-8 (a caption saved as
cp1252 or latin-1) are an error that names the file and the byte offset.
"""
from __future__ import annotations

import pathlib


class NotUtf8Error(ValueError):
  """A text file that is not UTF-8; `offset` is the first bad byte's position."""

  def __init__(self, path: pathlib.Path, offset: int, byte: int):
    super().__init__(f"{path} is not UTF-8 text: byte 0x{byte:02x} at offset {offset} "
                     "(saved as cp1252 or latin-1? re-save it as UTF-8)")
    self.path, self.offset, self.byte = path, offset, byte


def numbered_lines(path: str | pathlib.Path) -> list[tuple[int, str]]:
  """(1-based line number, line) of the file's non-blank lines, stripped of surrounding
  whitespace and of a leading BOM; CRLF, CR and LF all end a line.

  Raises:
    OSError: the file cannot be read.
    NotUtf8Error: it is not UTF-8.
  """
  path = pathlib.Path(path)
  data = path.read_bytes()
  try:
    text = data.decode("utf-8-sig")
  except UnicodeDecodeError as e:
    raise NotUtf8Error(path, e.start, data[e.start]) from None
  return [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1) if line.strip()]


def read_lines(path: str | pathlib.Path) -> list[str]:
  """The file's non-blank lines, as `numbered_lines` reads them, without their numbers."""
  return [line for _, line in numbered_lines(path)]
