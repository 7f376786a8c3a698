"""One command, one artifact: the seed studies run through their recipes and benches, gathered as REPORT.md and a
self-contained REPORT.html (``python recipes/report.py --profile tiny|cpu|full``).

- ``runner``: runs a script's ``main(argv)`` into its own folder and reuses a folder whose recorded command matches.
- ``profiles``: the sizes of each profile (tiny for the test suite, cpu for a 2-core machine, full for a GPU).
- ``sections``: the six sections, each read from its runs' results.json and pictures.
- ``html``: the markdown subset the report writes, as HTML with the pictures embedded.
- ``build``: the whole report, in order.
"""
