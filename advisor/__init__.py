"""The advisor: task files, the assessment, the recommendation, reports and gates."""
