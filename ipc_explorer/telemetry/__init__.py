"""What the instrument measures with: the child -> parent telemetry protocol, the bounded
histogram every duration goes into, and the one percentile rule every figure uses."""
