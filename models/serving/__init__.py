"""What the router loads and runs at decision time: nothing here imports training code
(the import contract in pyproject.toml).

- `features`: the feature vectors, the same from a live decision and from a log;
- `desk`: the desk's knowledge of its dealers as arrays, with their pricing (`quotecost`);
- `artifacts`: the shipped files (in models/) and their loading; `trees`: the compiled
  tree ensembles that score them;
- `predictors`: the learned models behind the router's ports (`FillPredictor`, `MlPanel`).
"""
