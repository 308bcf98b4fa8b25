"""The built-in task types, each registered through the `ladder.task_types` entry point group."""
