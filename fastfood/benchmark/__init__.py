"""Speed measurement for fastfood: the library behind `fastfood bench` and benchmarks/.

Split by job: `timing` (warm-up, repeats, min/median), `machine` (what the numbers were
measured on), `loaders` and `train` (what is measured), `suite` (what `fastfood bench`
runs), `report` (table, JSON, chart). The scripts in benchmarks/ import these pieces so
the product's benchmark and the standalone ones cannot measure differently.
"""
