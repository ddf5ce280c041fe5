"""What predict, evaluate and export share: finding a run and its images, loading the model
fast, and batched decoding that survives bad files. (Their phase timing, FASTFOOD_TIMING=1,
is measurement code: fastfood.phases.)

Each module has one job and imports TensorFlow only inside the functions that need it, so the
CLI can check its arguments (paths, run dirs, flags) before paying for the import.
"""
