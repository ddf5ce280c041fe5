"""`fastfood audit`: duplicates, leaks between splits, likely wrong labels, odd files.

`audit.audit()` finds (see its module doc), `page.write_report()` writes the HTML in the
same style as evaluate's report (`fastfood.report.html`). No TensorFlow unless a run is
given.
"""
