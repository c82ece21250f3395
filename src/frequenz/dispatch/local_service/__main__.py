# License: MIT
# Copyright © 2025 Frequenz Energy-as-a-Service GmbH

"""`python -m frequenz.dispatch.local_service`: `frequenz-dispatch serve`."""

import sys

from .command import main

sys.exit(main())
