"""pyinfra entry files, one per toolkit command (`pyinfra INVENTORY deploys/X.py`)."""
