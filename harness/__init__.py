"""The measuring layer: data, the model engine, the runner, the store and the metrics."""
