"""Small computations and experiments the notebooks run (pure torch/numpy, no plotting)."""
