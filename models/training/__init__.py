"""Making and scoring the shipped models (`blockroute train`, `blockroute evaluate
models`): a composition root, above the router and the simulators.

- `dealer_data`, `fill_data`: training rows from the desk's and the router's logs;
- `boosting`: the XGBoost dealer and fill models; `execenv`: the slicer's RL environment,
  `slicer`: its PPO training and ONNX export;
- `evaluate`: the shipped models on held-out days and episodes, with `metrics`' scores.
"""
