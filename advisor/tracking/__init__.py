"""Experiment tracking: an Assessment, its rungs, their trials and training curves sent to MLflow and TensorBoard.

record.py turns an Assessment into runs (pure); sinks.py is the registry the writers (mlflow_sink.py,
tensorboard_sink.py) register in; track.py chooses the sinks, runs them after the measurement and
turns an unreachable tracking server into one warning line.
"""
