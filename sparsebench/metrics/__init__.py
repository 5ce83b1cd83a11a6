"""What every run measures: accuracy and loss, near-zero weights, activation sparsity, noise robustness."""
