"""The web app (Flask): one page and a small JSON API over an `Explorer`.

  GET  /                     the page (search, motion details, upload)
  GET  /api/status           loading stage, or the gallery's size, engine, phase and step
  GET  /api/search?q=&mode=&k=   motions for a sentence or comma-separated keywords
  GET  /api/motion?id=&k=    a motion's captions, description and nearest motions
  GET  /api/joints?id=       a motion's joint positions to draw
  POST /api/upload           a .npy motion (form field `motion`): description, closest motions

Every failure is answered as {"error": "<one line>"} with its status (400 a bad request,
404 an unknown motion, 413 too large a file, 503 still loading, 500 a bug, logged with its
traceback), and the app goes on serving.
"""
from __future__ import annotations

import logging

import flask
from werkzeug import exceptions

from lexmo_jax.serve.explorer import Explorer, NotReady

logger = logging.getLogger("lexmo_jax.serve")

MAX_UPLOAD_MB = 64


def _one_line(error: Exception) -> str:
  text = str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error)
  return "; ".join(l.strip() for l in text.splitlines() if l.strip()) or type(error).__name__


def create_app(explorer: Explorer) -> flask.Flask:
  """The Flask app answering for `explorer` (started or not: /api/status tells)."""
  app = flask.Flask(__name__)
  app.config["MAX_CONTENT_LENGTH"] = MAX_UPLOAD_MB * 2**20
  app.json.sort_keys = False

  @app.get("/")
  def page():
    return flask.render_template("index.html", workdir=explorer.workdir, split=explorer.split)

  @app.get("/api/status")
  def status():
    return flask.jsonify(explorer.status())

  @app.get("/api/search")
  def search():
    args = flask.request.args
    return flask.jsonify(explorer.search(args.get("q", ""), args.get("mode", "auto"),
                                         args.get("k", 10)))

  @app.get("/api/motion")
  def motion():
    args = flask.request.args
    return flask.jsonify(explorer.motion(args.get("id", ""), args.get("k", 6)))

  @app.get("/api/joints")
  def joints():
    return flask.jsonify(explorer.joints(flask.request.args.get("id", "")))

  @app.post("/api/upload")
  def upload():
    file = flask.request.files.get("motion")
    if file is None or not file.filename:
      raise ValueError("no file was sent: choose a .npy motion file")
    return flask.jsonify(explorer.upload(file.read(), file.filename,
                                         flask.request.form.get("k", 10)))

  @app.errorhandler(NotReady)
  def not_ready(e):
    return flask.jsonify(error=_one_line(e)), 503

  @app.errorhandler(KeyError)
  def unknown(e):
    return flask.jsonify(error=_one_line(e)), 404

  @app.errorhandler(ValueError)
  def bad_request(e):
    return flask.jsonify(error=_one_line(e)), 400

  @app.errorhandler(exceptions.RequestEntityTooLarge)
  def too_large(e):
    del e
    return flask.jsonify(error=f"the file is larger than {MAX_UPLOAD_MB} MB"), 413

  @app.errorhandler(exceptions.HTTPException)
  def http_error(e):
    return flask.jsonify(error=f"{e.code} {e.name}: {e.description}"), e.code

  @app.errorhandler(Exception)
  def bug(e):
    logger.exception("request %s failed", flask.request.path)
    return flask.jsonify(error=f"internal error ({type(e).__name__}: {_one_line(e)}); the "
                               "server log has the traceback"), 500

  return app
