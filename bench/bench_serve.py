"""The browser demo's latency, over real HTTP: how long the served app takes to index a
gallery the first time, and to answer a sentence query, a keyword query, a motion's details
and an upload (median and 95th percentile, milliseconds, measured by the client).

  python bench/bench_serve.py                          # the demo's test split
  python bench/bench_serve.py --workdir W --split test --queries 200 --out results/serve.md

The app runs in this process on a free local port, with a fresh index folder so that the
first indexing is timed too. Results go to --out (Markdown, and the same path with .json);
by default a dated file in bench/.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import platform
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

import numpy as np

# Run as a script from any folder: make the package importable without installing it.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _get(url: str) -> float:
  started = time.perf_counter()
  with urllib.request.urlopen(url, timeout=60) as r:
    r.read()
  return (time.perf_counter() - started) * 1e3


def _post_file(url: str, data: bytes, name: str) -> float:
  boundary = "lexmo-bench-boundary"
  body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"motion\"; filename=\"{name}\""
          "\r\nContent-Type: application/octet-stream\r\n\r\n").encode() + data + (
              f"\r\n--{boundary}--\r\n").encode()
  request = urllib.request.Request(url, body, {
      "Content-Type": f"multipart/form-data; boundary={boundary}"})
  started = time.perf_counter()
  with urllib.request.urlopen(request, timeout=60) as r:
    r.read()
  return (time.perf_counter() - started) * 1e3


def _known(tokenizer, word: str) -> bool:
  from lexmo_jax.search.gallery import check_keywords  # pylint: disable=g-import-not-at-top
  try:
    return not check_keywords(tokenizer, [word])[2]
  except ValueError:
    return False


def _stats(ms: list[float]) -> dict:
  return {"n": len(ms), "ms_median": round(float(np.median(ms)), 2),
          "ms_p95": round(float(np.percentile(ms, 95)), 2), "ms_max": round(max(ms), 2)}


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--workdir", default="runs/demo/lexcmlp")
  parser.add_argument("--split", default="test")
  parser.add_argument("--queries", type=int, default=100, help="queries of each kind")
  parser.add_argument("--k", type=int, default=8, help="motions per answer (the page's default)")
  parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path(__file__).parent / (
      f"results_serve_{datetime.date.today().isoformat()}.md"))
  args = parser.parse_args(argv)
  from werkzeug.serving import make_server  # pylint: disable=g-import-not-at-top
  from lexmo_jax.serve.app import create_app  # pylint: disable=g-import-not-at-top
  from lexmo_jax.serve.explorer import Explorer  # pylint: disable=g-import-not-at-top

  import logging  # pylint: disable=g-import-not-at-top
  logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
  with tempfile.TemporaryDirectory() as scratch:
    explorer = Explorer(args.workdir, args.split, str(pathlib.Path(scratch) / "index"))
    server = make_server("127.0.0.1", 0, create_app(explorer), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    started = time.perf_counter()
    explorer.start().join()
    ready_s = time.perf_counter() - started
    if not explorer.status()["ready"]:
      raise SystemExit(f"the gallery did not open: {explorer.status()['error']}")
    gallery = explorer.gallery()
    pairs = list(gallery.pairs.values())
    rng = np.random.default_rng(0)
    captions = [c for p in pairs for c in p.captions]
    captions = [captions[i] for i in rng.permutation(len(captions))[:args.queries]]
    words = sorted({w.strip(".,").lower() for c in captions for w in c.split()
                    if w.strip(".,").isalpha() and len(w) > 3})
    words = [w for w in words if _known(gallery.model.tokenizer, w)]
    keywords = [", ".join(rng.choice(words, size=2, replace=False)) for _ in range(args.queries)]
    items = [pairs[i].item_id for i in rng.permutation(len(pairs))[:args.queries]]
    q = lambda text: f"{base}/api/search?" + urllib.parse.urlencode({"q": text, "k": args.k})
    _get(q("a person walks"))  # the first request of a connection pool, not measured
    rows = {
        "sentence query": _stats([_get(q(c)) for c in captions]),
        "keyword query": _stats([_get(q(k)) for k in keywords]),
        "motion details": _stats([_get(f"{base}/api/motion?" + urllib.parse.urlencode(
            {"id": i})) for i in items]),
        "motion joints": _stats([_get(f"{base}/api/joints?" + urllib.parse.urlencode(
            {"id": i})) for i in items]),
    }
    uploads = []
    for pair in pairs[:min(20, len(pairs))]:
      import io  # pylint: disable=g-import-not-at-top
      buffer = io.BytesIO()
      np.save(buffer, pair.motion)
      uploads.append(_post_file(f"{base}/api/upload", buffer.getvalue(), "clip.npy"))
    rows["upload (features)"] = _stats(uploads)
    server.shutdown()
  setup = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
           "workdir": args.workdir, "split": args.split, "gallery": len(pairs),
           "engine": explorer.status()["engine"], "k": args.k,
           "first_ready_s": round(ready_s, 2), "date": datetime.date.today().isoformat()}
  lines = [f"# Browser demo latency ({setup['date']})", "",
           f"{setup['machine']}; {args.workdir}, split {args.split!r}: {len(pairs)} motions, "
           f"{setup['engine']} engine; top-{args.k}; client-side milliseconds over local HTTP. "
           f"First opening (encode + index + compile): {ready_s:.1f} s.", "",
           "| request | n | median ms | p95 ms | max ms |", "|---|---|---|---|---|"]
  lines += [f"| {name} | {r['n']} | {r['ms_median']} | {r['ms_p95']} | {r['ms_max']} |"
            for name, r in rows.items()]
  text = "\n".join(lines)
  print(text)
  args.out.parent.mkdir(parents=True, exist_ok=True)
  args.out.write_text(text + "\n")
  args.out.with_suffix(".json").write_text(json.dumps({"setup": setup, "rows": rows}, indent=2)
                                           + "\n")
  print(f"wrote {args.out} and {args.out.with_suffix('.json')}")


if __name__ == "__main__":
  main()
