"""``python -m sklearn_mixedlp``: the ``sklearn-mixedlp`` command line.

See :mod:`sklearn_mixedlp._cli`, or run ``python -m sklearn_mixedlp --help``.
"""

import sys

from ._cli import main

if __name__ == "__main__":
    sys.exit(main())
