"""Customer analytics: BTYD summaries, BG/NBD, Pareto/NBD, Gamma-Gamma and CLV."""
