"""`python -m search ...`: the archsweep command line without its console script (a checkout on
PYTHONPATH, as on a GPU machine set up from a packed site-packages tarball)."""

from .cli import main

main()
