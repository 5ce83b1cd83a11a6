"""A finished sparsebench run loaded back as a PyTorch model, its test accuracy computed again here
with a plain loop, and the model used on a few images.

    sparsebench regularizer=dropout train.epochs=1            # prints the run's folder
    python examples/load_a_run.py results/default/<run-id>
"""

from __future__ import annotations

import argparse

import torch

from sparsebench import load_run
from sparsebench.data import load_splits


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", help="a completed run's folder: <results_dir>/<experiment>/<run-id>")
    args = parser.parse_args(argv)
    run = load_run(args.run_dir)
    cfg = run.config
    print(f"{run.record.run_id}: {cfg.model.name} with {cfg.regularizer.name}, seed {cfg.seed}, "
          f"{cfg.train.epochs} epoch(s) on {cfg.dataset.name}")
    print(run.model)
    # The test images the run was measured on, normalised as it normalised them.
    test = load_splits(cfg.dataset, torch.device("cpu")).test
    with torch.no_grad():
        predicted = torch.cat([run.model(batch).argmax(dim=1) for batch in test.inputs.split(500)])
    accuracy = 100.0 * (predicted == test.labels).float().mean().item()
    print(f"test accuracy {accuracy:.2f}% (the record says {run.record.metrics['test']['accuracy']:.2f}%)")
    print(f"first ten test images: predicted {predicted[:10].tolist()}, labels {test.labels[:10].tolist()}")
    return accuracy


if __name__ == "__main__":
    main()
