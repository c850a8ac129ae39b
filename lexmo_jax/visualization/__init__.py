"""Pictures: skeleton animations (drawn by input_pipeline.motion.drawing, which the
synthetic generator's previews use too), a lexical vector's words, PCA maps of embeddings.

All files are drawn with matplotlib's Agg renderer on bare Figures, so these functions run
on headless machines and leave pyplot's backend alone.
"""
from lexmo_jax.visualization.embedding_pca import pca_2d, plot_pca
from lexmo_jax.visualization.lexical import (plot_top_words, plot_word_cloud,
                                             plot_word_distribution, plot_words_side_by_side,
                                             top_words)
from input_pipeline.motion.drawing import render_skeleton_frames_png, render_skeleton_gif

__all__ = [
    "pca_2d", "plot_pca", "plot_top_words", "plot_word_cloud", "plot_word_distribution",
    "plot_words_side_by_side", "render_skeleton_frames_png", "render_skeleton_gif", "top_words",
]
