"""`python -m herd.cli`: the herd command."""

from __future__ import annotations

import sys

from herd.cli import main

sys.exit(main())
