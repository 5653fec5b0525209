"""The outputs room: what a person gets back. report.py prints per-row lines while streaming,
the closing summary and the ``--output`` CSV; label_metrics.py computes precision, recall and
ROC-AUC against known labels with numpy alone (not the engine's Prometheus metrics)."""
