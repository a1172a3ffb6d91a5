"""What the serving path imports: none of the training libraries.

`blockroute serve` and `simulate` load the compiled tree models from their cache and
the slicer through ONNX Runtime; scikit-learn, XGBoost, torch, MLflow and Ray cost one
to several seconds of import each and are for training, evaluation and scale-out. A
module on the serving path that imports one of them at its top (as the drift monitor
once did, through the metrics' AUC) makes every start pay for it.
"""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("sklearn", "xgboost", "torch", "mlflow", "ray", "stable_baselines3")

_PROBE = """
import sys
import router.service, router.desk, router.drift, router.cli.serve, router.cli.simulate
import router.app, router.api
print(",".join(sorted({m.split(".")[0] for m in sys.modules} & set(sys.argv[1:]))))
"""


def test_the_serving_modules_import_no_training_library() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, *HEAVY], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "", f"imported on the serving path: {out.stdout.strip()}"
