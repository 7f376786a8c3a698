"""The metadata lives in setup.cfg; this file only adds the compiled step 1 of toolkit.cleaning.

The extension is optional: without a C compiler the install goes on, and toolkit.cleaning runs the same steps
through a regular expression (same results, about half the speed).
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("toolkit._cleaning_scan", ["toolkit/_cleaning_scan.c"], optional=True)])
