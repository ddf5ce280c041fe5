"""Speed measurement for fastfood: the library behind `fastfood bench` and benchmarks/.

Split by job: `timing` (warm-up, repeats, min/median), `machine` (what the numbers were
measured on), `loaders` and `train` (what is measured), `suite` (what `fastfood bench`
runs), `report` (table, JSON, chart), `phases` (the per-phase timing line predict, evaluate
and export print with FASTFOOD_TIMING=1), `untrained` (a run with random weights, to time
predict at full size without training one). The scripts in benchmarks/ import these pieces
so the product's benchmark and the standalone ones cannot measure differently.

Product code imports only `phases` from here, and nothing in this package imports
TensorFlow at module level.
"""
