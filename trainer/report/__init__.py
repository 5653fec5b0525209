"""What a run tells the person who started it. ``evaluation`` holds the threshold's quantile rule
(also used by ``fitting.threshold``) and, when labels exist, how well the scores separate the
anomalies; ``plots`` draws the loss curves and the validation score distribution beside the
model; ``summary`` is the block printed when a run ends."""
