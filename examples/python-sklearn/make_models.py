"""Writes the example's bucket: models/iris/{1,2}/model.pkl, two scikit-learn
classifiers of the iris data set pickled with the versions in
requirements.txt.

- version 1: logistic regression (probabilities between 0 and 1);
- version 2: 1-nearest-neighbour (probabilities exactly 0 or 1),

so an answer shows which version served it. Run with the packages of
requirements.txt installed.
"""

import pathlib
import pickle

from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier

HERE = pathlib.Path(__file__).parent


def main() -> None:
    x, y = load_iris(return_X_y=True)
    models = {
        1: LogisticRegression(max_iter=1000).fit(x, y),
        2: KNeighborsClassifier(n_neighbors=1).fit(x, y),
    }
    for version, model in models.items():
        path = HERE / "models" / "iris" / str(version) / "model.pkl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(pickle.dumps(model))
        print(f"wrote {path.relative_to(HERE)} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
