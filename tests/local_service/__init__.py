# License: MIT
# Copyright © 2025 Frequenz Energy-as-a-Service GmbH

"""Tests of the local Dispatch API service."""
