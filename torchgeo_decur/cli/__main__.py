"""``python -m torchgeo_decur.cli``: the same as the ``torchgeo-decur`` command."""

from . import main

raise SystemExit(main())
