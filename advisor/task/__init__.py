"""The task as the user wrote it: the task file, its data, its rungs, validated before any model loads."""
