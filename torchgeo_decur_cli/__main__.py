"""``python -m torchgeo_decur_cli``: the same as the ``torchgeo-decur`` command."""

from . import main

raise SystemExit(main())
