"""What predict, evaluate and export share: finding a run and its images, loading the model
fast, batched decoding that survives bad files, and phase timing.

Each module has one job and imports TensorFlow only inside the functions that need it, so the
CLI can check its arguments (paths, run dirs, flags) before paying for the import.
"""
